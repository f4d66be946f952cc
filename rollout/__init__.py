"""Rollout fleet: Ray actors that own one inference engine each (vLLM or transformers) and return
`Rollout` records stamped with the policy version that sampled them.

engine.py (the RolloutEngine protocol) · vllm_engine.py · hf_engine.py · worker.py (RolloutWorker,
build_engine) · fleet.py (RolloutFleet, from a FleetSpec) · sync.py (the post-sync check, reference
logprobs) · scheduling.py · weights.py · nccl.py · procs.py. Imports nothing of rlcoder but its records.
"""
