"""Records that cross a process, Ray, HTTP or file boundary: problems, rollouts, verdicts.

Stdlib only (reward/ imports this module and must not pull in torch or pydantic). Every record is a
plain dataclass with a JSON round trip; persisted records carry `schema_version`.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

SCHEMA_VERSION = 1

T = TypeVar("T")


class VerdictStatus(str, enum.Enum):
    """Outcome of running one completion against its tests (ARCHITECTURE.md, "Verdicts")."""

    PASS = "pass"  # every test passed
    FAIL = "fail"  # a test failed (assertion)
    ERROR = "error"  # the code did not import, or a test raised something other than an assertion
    TIMEOUT = "timeout"  # wall-clock or CPU limit hit
    MEMORY = "memory"  # memory limit hit
    NO_CODE = "no_code"  # nothing to run in the completion
    INFRA_ERROR = "infra_error"  # the sandbox or service failed: not the model's fault, never a 0 reward
    BAD_TEST = "bad_test"  # the tests do not compile/collect or need a missing module: dropped, counted apart


class TestKind(str, enum.Enum):
    """How a problem's test source is run."""

    __test__ = False  # not a pytest test class

    PYTEST = "pytest"  # KodCode style: `from solution import f` and `def test_*`
    CHECK = "check"  # HumanEval style: `def check(candidate)` called with the entry point
    STDIO = "stdio"  # JSON list of {"input": str, "output": str} cases fed on stdin


class RewardMode(str, enum.Enum):
    BINARY = "binary"  # 1.0 only when every test passes
    PASS_FRACTION = "pass_fraction"  # passed / total tests


@dataclass
class FunctionInfo:
    """One function the tests import (KodCode's `test_info` entry)."""

    function_name: str
    parameter_list: str = ""  # e.g. "(nums, target)"
    function_declaration: str = ""  # e.g. "def two_sum(nums, target):"
    docstring: str = ""


@dataclass
class Problem:
    """A coding problem in KodCode's shape: a question, a reference solution and a test file."""

    problem_id: str
    question: str
    solution: str  # reference solution source; must pass `test`
    test: str  # test source, interpreted according to `test_kind`
    test_info: list[FunctionInfo] = field(default_factory=list)
    test_kind: TestKind = TestKind.PYTEST
    style: str = "instruct"  # "instruct" (ask for a function) or "complete" (continue a signature)
    difficulty: str = ""  # "easy" | "medium" | "hard" | "" (unknown)
    pass_rate: float | None = None  # labelled pass rate of a model's samples (KodCode's gpt_pass_percentage)
    pass_sequence: list[int] = field(default_factory=list)  # 1/0 per labelling sample (gpt_pass_sequence)
    reference_runtime_s: float | None = None  # the reference solution's sandboxed run, when measured
    subset: str = ""
    source: str = ""  # where it was loaded from: "bundled", a hub id or a path
    public_test: str = ""  # tests whose results may be shown to the model as feedback (multi-turn)
    schema_version: int = SCHEMA_VERSION

    @property
    def entry_point(self) -> str:
        """Name of the function the tests call, or "" when the tests name none."""
        return self.test_info[0].function_name if self.test_info else ""


@dataclass
class SamplingSpec:
    """Sampling parameters in engine-neutral form."""

    n: int = 1  # completions per prompt (a GRPO group)
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: list[str] = field(default_factory=list)
    seed: int | None = None


ENGINES = ("vllm", "transformers")


@dataclass(frozen=True)
class EngineSpec:
    """Everything needed to start one rollout engine; plain data so it can travel to a Ray actor."""

    kind: str  # one of ENGINES
    model_path: str  # a local Hugging Face model dir (or a hub id where downloads are allowed)
    dtype: str = "float32"
    max_model_len: int = 1024  # prompt + completion tokens
    seed: int = 0
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.85
    enable_lora: bool = False
    max_lora_rank: int = 16
    trust_remote_code: bool = False
    on_gpu: bool = False  # vLLM: set up the NCCL weight-transfer path; transformers: run on cuda
    # vLLM: skip torch.compile. On CPU it starts ~10 s sooner with the same steady tokens/s (measured
    # on the tiny model); on GPU CUDA graphs matter, so compile there.
    enforce_eager: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ENGINES:
            raise ValueError(f"rollout.engine: {self.kind!r} is not one of {', '.join(ENGINES)}")


@dataclass(frozen=True)
class FleetSpec:
    """What the rollout fleet needs from a run: its engines, how many, their GPUs, the default
    sampling and the post-sync check's tolerance (built from the config by rlcoder.specs)."""

    engine: EngineSpec
    num_workers: int = 1
    gpus_per_worker: float = 0.0
    sampling: SamplingSpec = field(default_factory=SamplingSpec)
    sync_check_tolerance: float = 1e-3  # mean |logprob gap| allowed on the check sequence


@dataclass
class RolloutRequest:
    """One prompt to sample a group of completions for: the rollout fleet's unit of work."""

    problem_id: str
    prompt: str  # the rendered prompt text (copied onto each Rollout)
    prompt_token_ids: list[int]
    step: int = 0  # the RL step asking, for rollout ids
    group: int = 0  # > 0: a further group of this step (dynamic sampling), so rollout ids stay unique
    schema_version: int = SCHEMA_VERSION

    def rollout_id(self, sample_index: int) -> str:
        extra = f"g{self.group}-" if self.group else ""
        return f"{self.step}-{self.problem_id}-{extra}{sample_index}"


@dataclass
class TurnRecord:
    """One turn of a multi-turn episode: the policy's answer, how it scored, and the feedback after it."""

    completion_text: str  # this turn's answer
    finish_reason: str  # "stop" | "length" | "abort"
    n_tokens: int = 0  # tokens the policy generated this turn
    public_verdict: Verdict | None = None  # against the problem's public tests: the feedback's source
    verdict: Verdict | None = None  # against all tests: what eval's per-turn pass rate counts
    feedback: str = ""  # the user turn appended after this answer ("" when the episode ended here)


@dataclass
class Rollout:
    """One sampled completion of one prompt, as the rollout fleet returns it; for a multi-turn episode,
    everything after the first prompt (answers and feedback turns) with `turns` describing each turn."""

    rollout_id: str  # unique within a run: "<step>-<problem_id>-<sample_index>"
    problem_id: str
    sample_index: int  # position within its group, 0..n-1
    prompt: str  # the rendered prompt text
    prompt_token_ids: list[int]
    completion_token_ids: list[int]
    completion_logprobs: list[float]  # one per completion token, under the sampling policy
    completion_text: str
    finish_reason: str  # "stop" | "length" | "abort"
    policy_version: int  # the learner update that produced the weights which sampled it
    step: int = 0
    worker_id: str = ""
    # 1 where a completion token was produced by the policy, 0 where the environment inserted it
    # (multi-turn feedback); empty means all ones.
    env_mask: list[int] = field(default_factory=list)
    # multi-turn episodes: one record per turn, in order (empty for a single-turn rollout);
    # completion_text is then the last turn's answer, the one the episode's reward scores
    turns: list[TurnRecord] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION


@dataclass
class ScoreItem:
    """One completion to score against one problem's tests (the reward service's unit of work)."""

    completion: str
    test: str
    test_kind: TestKind = TestKind.PYTEST
    entry_point: str = ""
    prompt: str = ""  # for `complete`-style continuations: code the completion continues
    timeout_s: float = 10.0  # wall-clock limit for the whole program, tests included
    memory_mb: int = 1024  # address-space limit
    item_id: str = ""  # echoed back, e.g. a rollout_id


@dataclass
class Verdict:
    """Result of scoring one ScoreItem."""

    status: VerdictStatus
    passed: int = 0  # tests that passed
    total: int = 0  # tests collected (0 when the program did not get as far as collection)
    duration_ms: float = 0.0  # wall-clock time of the sandboxed run
    output_tail: str = ""  # truncated stdout/stderr and failure detail, for feedback and debugging
    detail: str = ""  # one line: the first failure, the exception, or the infra problem
    item_id: str = ""
    cached: bool = False
    judge: str = ""  # who decided: "isolated" (judge process apart from the program), "in_process", "pytest"
    schema_version: int = SCHEMA_VERSION


UNSCORED = frozenset({VerdictStatus.INFRA_ERROR, VerdictStatus.BAD_TEST})  # no evidence about the code


def reward_from_verdict(verdict: Verdict, mode: RewardMode = RewardMode.BINARY) -> float | None:
    """The one place a verdict becomes a reward. None means "drop this sample" (infra_error, bad_test)."""
    if verdict.status in UNSCORED:
        return None
    if verdict.status is VerdictStatus.PASS:
        return 1.0
    if mode is RewardMode.PASS_FRACTION and verdict.total > 0:
        return verdict.passed / verdict.total
    return 0.0


def pass_rate(passed: int, scored: int) -> float:
    """Passing over scored samples (infra errors are neither); NaN when nothing was scored: no
    verdict is no evidence, never a 0% pass rate."""
    return passed / scored if scored else math.nan


@dataclass
class ScoredGroup:
    """A GRPO group: the rollouts of one prompt with their verdicts and rewards (index-aligned)."""

    problem_id: str
    rollouts: list[Rollout]
    verdicts: list[Verdict]
    rewards: list[float | None]  # None where the verdict was infra_error or bad_test
    step: int = 0
    schema_version: int = SCHEMA_VERSION


# ---------------------------------------------------------------------------------------------
# JSON round trip: dataclass <-> plain dict, following the type hints (nested records, enums,
# lists, optionals). Kept generic so that every record above gets it for free.


def group_scored(
    rollouts: Sequence[Rollout],
    verdicts: Sequence[Verdict],
    rewards: Sequence[float | None],
    step: int | None = None,
) -> list[ScoredGroup]:
    """Regroup flat, problem-contiguous records into one ScoredGroup per prompt: a group starts where
    the problem changes or a rollout has sample_index 0. The group's step is `step`, else the rollouts'."""
    groups: list[ScoredGroup] = []
    for r, v, w in zip(rollouts, verdicts, rewards, strict=True):
        if not groups or groups[-1].problem_id != r.problem_id or r.sample_index == 0:
            groups.append(ScoredGroup(r.problem_id, [], [], [], step=r.step if step is None else step))
        groups[-1].rollouts.append(r)
        groups[-1].verdicts.append(v)
        groups[-1].rewards.append(w)
    return groups


def to_dict(record: Any) -> Any:
    """A JSON-serializable copy of a record (or of a list of records)."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {f.name: to_dict(getattr(record, f.name)) for f in dataclasses.fields(record)}
    if isinstance(record, enum.Enum):
        return record.value
    if isinstance(record, (list, tuple)):
        return [to_dict(x) for x in record]
    if isinstance(record, dict):
        return {k: to_dict(v) for k, v in record.items()}
    return record


def from_dict(cls: type[T], data: Any) -> T:
    """Build a record from the dict that `to_dict` made. Unknown keys are an error."""
    return _convert(cls, data, cls.__name__)


def to_json(record: Any) -> str:
    return json.dumps(to_dict(record), ensure_ascii=False, separators=(",", ":"))


def from_json(cls: type[T], text: str) -> T:
    return from_dict(cls, json.loads(text))


class RecordError(ValueError):
    """A dict does not match the record it should become; the message names the field path."""


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _convert_union(tp, value, path)
    if origin in (list, dict):
        return _convert_container(tp, value, path)
    if tp is Any:
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _convert_record(tp, value, path)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in tp)
            raise RecordError(f"{path}: {value!r} is not one of {allowed}") from None
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(tp, type) and (not isinstance(value, tp) or (tp is int and isinstance(value, bool))):
        raise RecordError(f"{path}: expected {tp.__name__}, got {type(value).__name__}")
    return value


def _convert_union(tp: Any, value: Any, path: str) -> Any:
    args = typing.get_args(tp)
    if value is None and type(None) in args:
        return None
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _convert(arg, value, path)
        except RecordError:
            continue
    raise RecordError(f"{path}: {value!r} does not match {tp}")


def _convert_container(tp: Any, value: Any, path: str) -> Any:
    if typing.get_origin(tp) is list:
        if not isinstance(value, list):
            raise RecordError(f"{path}: expected a list, got {type(value).__name__}")
        (item_tp,) = typing.get_args(tp)
        return [_convert(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, dict):
        raise RecordError(f"{path}: expected an object, got {type(value).__name__}")
    _, val_tp = typing.get_args(tp)
    return {k: _convert(val_tp, v, f"{path}.{k}") for k, v in value.items()}


def _convert_record(cls: type, value: Any, path: str) -> Any:
    if not isinstance(value, dict):
        raise RecordError(f"{path}: expected an object, got {type(value).__name__}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise RecordError(f"{path}: unknown field(s) {', '.join(unknown)}")
    version = value.get("schema_version", SCHEMA_VERSION)
    if "schema_version" in fields and version != SCHEMA_VERSION:
        raise RecordError(f"{path}: schema_version {version} is not {SCHEMA_VERSION}")
    kwargs = {}
    for name, f in fields.items():
        if name in value:
            kwargs[name] = _convert(hints[name], value[name], f"{path}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise RecordError(f"{path}: missing required field {name}")
    return cls(**kwargs)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]
