"""Environments a policy acts in beyond one answer: multi-turn episodes with execution feedback."""
