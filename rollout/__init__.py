"""Rollout fleet: Ray actors that own one inference engine each (vLLM or transformers) and return
`Rollout` records stamped with the policy version that sampled them."""
