"""What the delivery workflows need to know about a branch or a stack, from the program itself.

The workflows never spell out which branch deploys to which stack: they ask this module, which
reads the program's own ``BRANCH_FOR_ENVIRONMENT`` and the stack files, so the map lives in one
place.

    python -m stacktools.pipeline target --branch develop    stack, branch, environments, image
    python -m stacktools.pipeline target --stack prod
    python -m stacktools.pipeline drift-stacks --schedule '7 * * * *'
    python -m stacktools.pipeline drift-stacks --stack all

Results are ``key=value`` lines, appended to ``$GITHUB_OUTPUT`` when it is set (a workflow step)
and printed either way.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from components.config.model import BRANCH_FOR_ENVIRONMENT
from components.config.secret_rules import NAMESPACE
from components.config.sections import Images
from components.platform.catalogue import ENVIRONMENTS
from stacktools import environments
from stacktools.environments import DEPLOY, DRIFT, PREVIEW, ROLES

REPO = Path(__file__).resolve().parents[1]
STACKS: tuple[str, ...] = tuple(BRANCH_FOR_ENVIRONMENT)
# Production is checked for drift several times a day, the others once a day (one cron line
# each): a cron line whose hour field is a plain number is the daily one.
FREQUENT_DRIFT_STACKS = frozenset({"prod"})


class PipelineError(Exception):
    """A branch, stack or schedule the pipeline has no rule for."""


@dataclass(frozen=True)
class Target:
    stack: str
    branch: str
    github_environment: str
    image: str
    preview_environment: str
    drift_environment: str


def github_environment(stack: str, role: str) -> str:
    """The GitHub environment a ``role`` job for ``stack`` runs in (stacktools.environments)."""
    try:
        return environments.github_environment(stack, role)
    except environments.RoleError as error:
        raise PipelineError(str(error)) from error


def github_environments() -> list[str]:
    """Every GitHub environment the workflows may name, for the operator's checklist and the
    workflow lint."""
    return [github_environment(stack, role) for stack in STACKS for role in ROLES]


def _app_image(stack: str) -> str:
    """The app image repository the stack deploys: its stack file's, else the program default."""
    document = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text()) or {}
    images = (document.get("config") or {}).get(f"{NAMESPACE}:images") or {}
    return Images.model_validate(images).app


def target_for_stack(stack: str) -> Target:
    if stack in ENVIRONMENTS and stack not in BRANCH_FOR_ENVIRONMENT:
        raise PipelineError(
            f"no branch deploys stack {stack!r}: it is deployed by ./deploy.sh {stack}; the "
            f"pipeline's stacks are {', '.join(STACKS)}"
        )
    if stack not in BRANCH_FOR_ENVIRONMENT:
        raise PipelineError(f"no stack {stack!r}; the stacks are {', '.join(STACKS)}")
    return Target(
        stack=stack,
        branch=BRANCH_FOR_ENVIRONMENT[stack],
        github_environment=github_environment(stack, DEPLOY),
        image=_app_image(stack),
        preview_environment=github_environment(stack, PREVIEW),
        drift_environment=github_environment(stack, DRIFT),
    )


def target_for_branch(branch: str) -> Target:
    stacks = [stack for stack, known in BRANCH_FOR_ENVIRONMENT.items() if known == branch]
    if not stacks:
        branches = ", ".join(BRANCH_FOR_ENVIRONMENT.values())
        raise PipelineError(f"branch {branch!r} deploys nowhere; deploying branches: {branches}")
    return target_for_stack(stacks[0])


def drift_stacks(*, schedule: str | None = None, stack: str | None = None) -> list[str]:
    """The stacks one drift run checks: a chosen one (or ``all``), else by the cron line."""
    if stack == "all":
        return list(STACKS)
    if stack:
        return [target_for_stack(stack).stack]
    if not schedule:
        raise PipelineError("give --schedule (the cron line that fired) or --stack")
    fields = schedule.split()
    if len(fields) != 5:
        raise PipelineError(f"{schedule!r} is not a five-field cron line")
    frequent = not fields[1].isdigit()
    return [s for s in STACKS if (s in FREQUENT_DRIFT_STACKS) == frequent]


def _emit(values: dict[str, str]) -> None:
    lines = "".join(f"{key}={value}\n" for key, value in values.items())
    sys.stdout.write(lines)
    output = os.environ.get("GITHUB_OUTPUT")
    if output:
        with open(output, "a", encoding="utf-8") as handle:
            handle.write(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stacktools.pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    target = commands.add_parser("target", help="stack, branch, environment and image")
    chosen = target.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--branch")
    chosen.add_argument("--stack")
    drift = commands.add_parser(
        "drift-stacks", help="the stacks a drift run checks, each with its drift environment"
    )
    drift.add_argument("--schedule", help="the cron line that started the run")
    drift.add_argument("--stack", help="one stack, or 'all'")
    args = parser.parse_args(argv)
    try:
        if args.command == "target":
            found = target_for_branch(args.branch) if args.branch else target_for_stack(args.stack)
            _emit({key.replace("_", "-"): value for key, value in asdict(found).items()})
        else:
            stacks = drift_stacks(schedule=args.schedule, stack=args.stack)
            # A matrix of objects: each drift job runs in its own stack's drift environment.
            matrix = [{"stack": s, "environment": github_environment(s, DRIFT)} for s in stacks]
            _emit({"stacks": json.dumps(stacks), "matrix": json.dumps(matrix)})
    except PipelineError as error:
        print(f"pipeline: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
