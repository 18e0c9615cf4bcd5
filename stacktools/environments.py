"""The GitHub environments the delivery workflows run in, and the secrets each holds.

Each job that touches a stack runs in a GitHub environment of its own per stack, so it gets only
that stack's credentials for that job: the deploy's can change the stack, preview's and drift's
are read-only where the backend allows (docs/pipeline.md#github-environments). Kept apart from
``stacktools.pipeline`` (which reads the program's configuration model) so the workflow lint
starts quickly.
"""

from __future__ import annotations

DEPLOY, PREVIEW, DRIFT = "deploy", "preview", "drift"
ROLES = (DEPLOY, PREVIEW, DRIFT)
# The deploy environment of a stack, when it is not named after the stack; production's carries
# the approval rule.
GITHUB_ENVIRONMENT = {"prod": "production"}
# The secrets every one of those environments holds, under the same names; the values differ per
# environment. Nothing else is a secret of an environment.
ENVIRONMENT_SECRETS = frozenset(
    {
        "PULUMI_ACCESS_TOKEN",
        "PULUMI_BACKEND_URL",
        "PULUMI_CONFIG_PASSPHRASE",
        "SWARM_SSH_KEY",
        "SWARM_SSH_KNOWN_HOSTS",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    }
)
# Repository secrets: readable by every job of every workflow, so none may reach a stack.
REPOSITORY_SECRETS = frozenset({"APPS_JSON"})


class RoleError(ValueError):
    """A job role the pipeline does not have."""


def github_environment(stack: str, role: str) -> str:
    """The GitHub environment a ``role`` job for ``stack`` runs in: the deploy's is the stack's
    own (``production`` for prod), preview's and drift's are prefixed with the role."""
    if role not in ROLES:
        raise RoleError(f"no role {role!r}; the roles are {', '.join(ROLES)}")
    base = GITHUB_ENVIRONMENT.get(stack, stack)
    return base if role == DEPLOY else f"{role}-{base}"
