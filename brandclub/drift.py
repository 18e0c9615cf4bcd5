"""``python -m brandclub.drift``: the same as ``python -m stacktools.drift``."""

import sys

from stacktools.drift import main

if __name__ == "__main__":
    sys.exit(main())
