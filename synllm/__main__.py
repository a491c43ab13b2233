"""``python -m synllm``: the command line."""

import sys

from synllm.cli import main

sys.exit(main())
