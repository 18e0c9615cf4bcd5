"""The pull-request comment of a preview, whether ``pulumi preview`` passed or failed.

    python -m stacktools.preview_comment OUTPUT --stack prod --status 255 > body.md

A failed preview (a policy violation, an engine error) is the one the reviewer most needs to
see, so the comment is written either way: a heading that says which, and the CLI's output.
The first line is a marker by which the workflow finds and updates its own earlier comment.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

MARKER = "<!-- brandclub-preview -->"
# GitHub refuses a comment body over 65,536 characters; keep the end, where the summary and the
# policy violations are.
LIMIT = 60_000


def body(output: str, *, stack: str, status: int, commit: str = "") -> str:
    verdict = "passed" if status == 0 else f"failed (exit status {status})"
    at = f" at `{commit[:12]}`" if commit else ""
    if len(output) > LIMIT:
        cut = "[… the beginning is cut; the whole output is in the job's log]\n"
        output = cut + output[-LIMIT:]
    fence = "````"
    return (
        f"{MARKER}\n### Pulumi preview of `{stack}`{at}: {verdict}\n\n"
        f"{fence}text\n{output.rstrip()}\n{fence}\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stacktools.preview_comment")
    parser.add_argument("output", type=Path, help="the preview's combined output")
    parser.add_argument("--stack", required=True)
    parser.add_argument("--status", type=int, required=True)
    parser.add_argument("--commit", default="")
    args = parser.parse_args(argv)
    text = args.output.read_text(errors="replace") if args.output.exists() else "(no output)"
    sys.stdout.write(body(text, stack=args.stack, status=args.status, commit=args.commit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
