"""``python -m brandclub``: the same as ``python -m stacktools``."""

import sys

from stacktools.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
