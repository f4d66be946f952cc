"""Rollout fleet: Ray actors that own one inference engine each (vLLM or transformers) and return
`Rollout` records stamped with the policy version that sampled them.

engine.py (the RolloutEngine protocol, EngineSpec, the post-sync check) · vllm_engine.py · hf_engine.py
· worker.py (RolloutWorker) · fleet.py (RolloutFleet) · scheduling.py · weights.py · nccl.py · procs.py
"""
