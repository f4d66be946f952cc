"""`python -m reward`: run the reward service (same flags as `rlcoder reward serve`)."""

from __future__ import annotations

import sys

from reward.service.server import main

if __name__ == "__main__":
    sys.exit(main())
