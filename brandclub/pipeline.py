"""``python -m brandclub.pipeline``: the same as ``python -m stacktools.pipeline``."""

import sys

from stacktools.pipeline import main

if __name__ == "__main__":
    sys.exit(main())
