"""The Brand Club policy pack; the policies themselves are in guardrails.py (tested by pytest)."""

import sys
from pathlib import Path

# The policies read the program's service catalogue (components/platform/catalogue.py, which imports
# nothing of the program), one folder up; guardrails.py sits beside this file whichever way the
# policy host starts it.
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from guardrails import POLICIES  # noqa: E402 - needs the path above
from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

PolicyPack(
    name="brandclub-guardrails",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=list(POLICIES),
)
