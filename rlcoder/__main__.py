"""`python -m rlcoder` is the `rlcoder` command."""

import sys

from rlcoder.cli import main

sys.exit(main())
