"""`python -m rlcoder` is the `rlcoder` command."""

import sys

from rlcoder.cli.main import main

sys.exit(main())
