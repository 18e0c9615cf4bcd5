"""The Pulumi state backend a pipeline job logs in to, checked before anything runs.

    python -m stacktools.backend --stack prod

reads ``PULUMI_BACKEND_URL`` and the credentials from the environment, refuses what cannot work
in CI, and prints ``kind`` and ``stack`` (the stack's name qualified by organisation and project,
for ``--stack``) as ``key=value`` lines, appended to ``$GITHUB_OUTPUT`` when it is set. Neither
the URL nor any credential is printed: only the names of the missing ones.

What works in CI (docs/pipeline.md#state-backend):

- Pulumi Cloud: no URL (or an ``https://`` one, a self-hosted Pulumi Cloud) and
  ``PULUMI_ACCESS_TOKEN``;
- ``s3://bucket`` (AWS, or an S3-compatible store with ``?endpoint=…&region=…``) and
  ``AWS_ACCESS_KEY_ID`` with ``AWS_SECRET_ACCESS_KEY``.

``file://`` is refused: a hosted runner's disk is empty and thrown away, so ``pulumi up`` would
find no state and create the whole platform again beside the running one. ``gs://`` and
``azblob://`` are refused because no workflow passes their credentials. Every stack uses the
passphrase secrets provider, so ``PULUMI_CONFIG_PASSPHRASE`` is required whatever the backend.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
# The Pulumi Cloud organisation that owns the stacks. A self-managed backend has no
# organisations: Pulumi names every stack there "organization/<project>/<stack>".
PULUMI_ORGANIZATION = "brand-club"
SELF_MANAGED_ORGANIZATION = "organization"
CLOUD, S3 = "pulumi-cloud", "s3"
PASSPHRASE = "PULUMI_CONFIG_PASSPHRASE"
# The credentials each supported backend needs, by environment variable (and secret) name.
CREDENTIALS = {
    CLOUD: ("PULUMI_ACCESS_TOKEN",),
    S3: ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
}
_REFUSED = {
    "file": "a file:// backend on a hosted runner is empty, throwaway state: `pulumi up` would "
    "create the whole platform again; use Pulumi Cloud or s3://",
    "gs": "no workflow passes Google Cloud credentials; use Pulumi Cloud or s3://",
    "azblob": "no workflow passes Azure Storage credentials; use Pulumi Cloud or s3://",
}


class BackendError(Exception):
    """A backend URL the pipeline cannot use, or credentials it lacks."""


@dataclass(frozen=True)
class Backend:
    kind: str
    url: str

    def qualified(self, stack: str) -> str:
        organization = PULUMI_ORGANIZATION if self.kind == CLOUD else SELF_MANAGED_ORGANIZATION
        return f"{organization}/{project()}/{stack}"


def project() -> str:
    return yaml.safe_load((REPO / "Pulumi.yaml").read_text())["name"]


def backend(url: str) -> Backend:
    """The backend ``url`` names (empty: Pulumi Cloud), or why CI cannot use it."""
    url = url.strip()
    if not url or url.startswith("https://"):
        return Backend(CLOUD, url)
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "s3":
        return Backend(S3, url)
    reason = _REFUSED.get(scheme, "not a backend URL the pipeline knows (Pulumi Cloud or s3://)")
    # The URL itself is a secret: name only its scheme.
    raise BackendError(f"PULUMI_BACKEND_URL ({scheme or 'no scheme'}://…): {reason}")


def missing_credentials(found: Backend, environ: Mapping[str, str]) -> list[str]:
    """The names of the required credentials that are unset or empty."""
    needed = (*CREDENTIALS[found.kind], PASSPHRASE)
    return [name for name in needed if not environ.get(name)]


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stacktools.backend", description=__doc__)
    parser.add_argument("--stack", required=True, help="the stack's short name, e.g. prod")
    args = parser.parse_args(argv)
    environ = os.environ if environ is None else environ
    try:
        found = backend(environ.get("PULUMI_BACKEND_URL", ""))
        missing = missing_credentials(found, environ)
        if missing:
            raise BackendError(
                f"{found.kind} backend: set {', '.join(missing)} in this job's GitHub "
                "environment (docs/pipeline.md#github-environments)"
            )
    except BackendError as error:
        print(f"backend: {error}", file=sys.stderr)
        return 2
    lines = f"kind={found.kind}\nstack={found.qualified(args.stack)}\n"
    sys.stdout.write(lines)
    output = environ.get("GITHUB_OUTPUT")
    if output:
        with open(output, "a", encoding="utf-8") as handle:
            handle.write(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
