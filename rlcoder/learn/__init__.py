"""Learners: the RL step plumbing GRPO and PPO share, GRPO (TRL), PPO (ours), SFT, weight sync and the one
model/tokenizer/LoRA loader."""
