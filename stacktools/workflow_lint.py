"""The workflow checks actionlint cannot make, because they need this repository's own facts.

    python -m stacktools.workflow_lint FILE...

- A step that uses a local composite action (``uses: ./.github/actions/<name>``) passes only
  inputs the action declares, and every input it requires.
- A job that calls a local reusable workflow passes only its declared inputs and secrets, every
  required one, and never ``secrets: inherit`` (that would hand it every secret).
- Secrets exist where they are read: a job outside a GitHub environment reads only repository
  secrets (``stacktools.environments.REPOSITORY_SECRETS``) and ``GITHUB_TOKEN``; a job in one of the
  pipeline's environments also the secrets each of them holds (``ENVIRONMENT_SECRETS``); a
  reusable workflow only the secrets it declares. An environment named outright must be one of
  ``stacktools.pipeline.github_environments()``.
- Secrets go to the steps that use them: never into a workflow's or a job's ``env``.

Prints one line per finding; exits 1 if there is any.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from stacktools.environments import ENVIRONMENT_SECRETS, REPOSITORY_SECRETS

REPO = Path(__file__).resolve().parents[1]
LOCAL = "./"
_SECRET = re.compile(r"\bsecrets\.([A-Za-z_][A-Za-z0-9_]*)")
# Provided by GitHub to every job.
GITHUB_TOKEN = "GITHUB_TOKEN"


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def _triggers(document: Mapping[str, Any]) -> dict[str, Any]:
    # PyYAML reads the key "on" as the boolean True.
    on = document.get(True, document.get("on")) or {}
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return dict(on)


def _secrets_in(node: Any) -> set[str]:
    return set(_SECRET.findall(yaml.safe_dump(node))) if node is not None else set()


def _check_inputs(
    where: str, given: Mapping[str, Any], declared: Mapping[str, Any]
) -> Iterator[str]:
    for name in sorted(set(given) - set(declared)):
        yield f"{where}: input {name!r} is not declared (declared: {', '.join(sorted(declared))})"
    for name, spec in declared.items():
        spec = spec or {}
        if spec.get("required") and "default" not in spec and name not in given:
            yield f"{where}: required input {name!r} is not given"


def _check_step(where: str, step: Mapping[str, Any], repo: Path) -> Iterator[str]:
    uses = step.get("uses", "")
    if not uses.startswith(LOCAL):
        return
    action = repo / uses / "action.yml"
    if not action.is_file():
        yield f"{where}: {uses} has no action.yml"
        return
    declared = _load(action).get("inputs") or {}
    yield from _check_inputs(f"{where} ({uses})", step.get("with") or {}, declared)


def _check_call(where: str, job: Mapping[str, Any], repo: Path) -> Iterator[str]:
    uses = job["uses"]
    if job.get("secrets") == "inherit":
        yield f"{where}: `secrets: inherit` hands {uses} every secret; pass the ones it declares"
    if not uses.startswith(LOCAL):
        return
    call = _triggers(_load(repo / uses)).get("workflow_call") or {}
    yield from _check_inputs(f"{where} ({uses})", job.get("with") or {}, call.get("inputs") or {})
    passed = job.get("secrets") if isinstance(job.get("secrets"), Mapping) else {}
    yield from _check_inputs(f"{where} ({uses})", passed, call.get("secrets") or {})


def _environment_name(job: Mapping[str, Any]) -> str | None:
    environment = job.get("environment")
    if isinstance(environment, Mapping):
        environment = environment.get("name")
    return environment


def _readable_secrets(
    where: str, job: Mapping[str, Any], declared_call: set[str] | None
) -> tuple[set[str], list[str]]:
    readable = {GITHUB_TOKEN, *REPOSITORY_SECRETS}
    findings = []
    environment = _environment_name(job)
    if environment:
        readable |= ENVIRONMENT_SECRETS
        if "${{" not in environment:
            # Only here: the pipeline module reads the program's configuration model (0.3 s).
            from stacktools.pipeline import github_environments

            if environment not in github_environments():
                findings.append(
                    f"{where}: environment {environment!r} is none of the pipeline's "
                    f"({', '.join(github_environments())})"
                )
    if declared_call is not None:
        # A reusable workflow reads only what its caller passes: its declared secrets.
        readable &= declared_call | {GITHUB_TOKEN}
        readable |= declared_call
    return readable, findings


def check_workflow(path: Path, repo: Path = REPO) -> list[str]:
    document = _load(path)
    name = path.name
    findings = [
        f"{name}: workflow env reads secret {secret}: give it to the step that uses it"
        for secret in sorted(_secrets_in(document.get("env")))
    ]
    triggers = _triggers(document)
    declared_call = (
        set((triggers["workflow_call"] or {}).get("secrets") or {})
        if "workflow_call" in triggers
        else None
    )
    for job_id, job in (document.get("jobs") or {}).items():
        where = f"{name}: job {job_id}"
        findings += [
            f"{where}: job env reads secret {secret}: give it to the step that uses it"
            for secret in sorted(_secrets_in(job.get("env")))
        ]
        if "uses" in job:
            findings += list(_check_call(where, job, repo))
            continue
        readable, found = _readable_secrets(where, job, declared_call)
        findings += found
        for index, step in enumerate(job.get("steps") or []):
            step_where = f"{where}: step {step.get('name') or step.get('uses') or index + 1}"
            findings += list(_check_step(step_where, step, repo))
        context = (
            f"environment {_environment_name(job)}" if job.get("environment") else "no environment"
        )
        for secret in sorted(_secrets_in(job) - readable):
            findings.append(
                f"{where}: secret {secret} does not exist in this job ({context}; "
                "stacktools/environments.py: ENVIRONMENT_SECRETS, REPOSITORY_SECRETS)"
            )
    return findings


def main(argv: Sequence[str] | None = None) -> int:
    paths = [Path(arg) for arg in (sys.argv[1:] if argv is None else argv)]
    findings = [finding for path in paths for finding in check_workflow(path)]
    for finding in findings:
        print(finding)
    print(f"workflow_lint: {len(paths)} file(s), {len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
