"""Run in a venv that has only the `reward` extra: every reward module imports without the ML
stack, and the in-process scorer passes a correct program. (`make reward-extra`)"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import reward
from reward import score
from rlcoder.records import ScoreItem, VerdictStatus

HEAVY = ("torch", "ray", "vllm", "trl", "peft", "transformers")

names = [m.name for m in pkgutil.walk_packages(reward.__path__, "reward.") if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
loaded = [m for m in HEAVY if m in sys.modules]
if loaded:
    sys.exit(f"reward extra: importing reward pulled in {loaded}")
item = ScoreItem(
    completion="```python\ndef f():\n    return 1\n```",
    test="from solution import f\n\ndef test_f():\n    assert f() == 1\n",
    entry_point="f",
)
verdict = score([item])[0]
if verdict.status is not VerdictStatus.PASS:
    sys.exit(f"reward extra: a correct program scored {verdict}")
print(f"reward extra: {len(names)} reward modules import without {', '.join(HEAVY)}; scoring works")
