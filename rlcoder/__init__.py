"""rlcoder: RL post-training of code LLMs with verifiable (executed unit test) rewards.

Importing this package is cheap: the heavy stack (torch, TRL, vLLM, Ray) is imported only by the
modules that use it, when they are used.
"""

__version__ = "0.1.0"
