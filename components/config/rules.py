"""Rules across the sections of the stack configuration that guard against losing data or
service: prod's safety without the policy pack, who may claim which domains, and host
directories that must stay apart. components/config/model.py runs them with its other rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from components.config.nodes import SharedPathStorage
from components.config.types import Violation
from components.platform.catalogue import APP_SERVICES, STANDALONE_ENVIRONMENTS

if TYPE_CHECKING:
    from components.config.model import StackConfig

PROD = "prod"
# Let's Encrypt's limit on the names of one certificate; Traefik orders one for all domains.
CERTIFICATE_NAMES_MAX = 100
# RFC 6761: names under .localhost resolve to this machine, never to a shared swarm.
LOCALHOST = "localhost"
DECOMMISSION_KEY = "dataProtection.decommission"
# Where the operator reads how to take prod down on purpose.
DECOMMISSION_DOC = "docs/operations.md#decommissioning-prod"
PROD_MIN_REPLICAS = 2


def domain_rules(environment: str, domains: list[str]) -> list[Violation]:
    broken = [
        Violation(
            f"domains[{index}]",
            domain,
            f"a public DNS name: .{LOCALHOST} names resolve to the machine that asks, so only a "
            f"stack that runs on it ({', '.join(STANDALONE_ENVIRONMENTS)}) may claim them",
        )
        for index, domain in enumerate(domains)
        if (domain == LOCALHOST or domain.endswith(f".{LOCALHOST}"))
        and environment not in STANDALONE_ENVIRONMENTS
    ]
    if len(domains) > CERTIFICATE_NAMES_MAX:
        broken.append(
            Violation(
                "domains",
                f"{len(domains)} names",
                f"at most {CERTIFICATE_NAMES_MAX} names: Traefik orders one certificate for all "
                "of them, and Let's Encrypt issues none with more",
            )
        )
    return broken


def prod_safety_rules(config: StackConfig) -> list[Violation]:
    """What the policy pack checks on prod's resources, checked on its configuration too, so
    ``pulumi up -s prod`` without ``--policy-pack`` cannot unprotect data or drop to one
    replica. ``dataProtection.decommission: true`` lifts them on purpose."""
    protection = config.data_protection
    if config.environment != PROD:
        if protection.decommission:
            return [
                Violation(
                    DECOMMISSION_KEY,
                    True,
                    f"unset outside {PROD}: only prod's protection needs lifting on purpose",
                )
            ]
        return []
    if protection.decommission:
        return []
    override = (
        f"; to take prod down on purpose, set brandclub:{DECOMMISSION_KEY} to true "
        f"({DECOMMISSION_DOC})"
    )
    broken = [
        Violation(
            f"dataProtection.{key}",
            False,
            f"true in {PROD}: {because}{override}",
        )
        for key, value, because in (
            ("protect", protection.protect, "Pulumi then refuses to delete prod's data"),
            ("retainVolumes", protection.retain_volumes, "a destroy then keeps prod's volumes"),
        )
        if not value
    ]
    for row in APP_SERVICES:
        settings = config.services.get(row.name)
        if row.singleton or settings is None or settings.replicas >= PROD_MIN_REPLICAS:
            continue
        broken.append(
            Violation(
                f"services.{row.name}.replicas",
                settings.replicas,
                f"at least {PROD_MIN_REPLICAS} in {PROD}: one replica is an outage on every "
                f"deploy and every node restart{override}",
            )
        )
    return broken


def _overlap(one: str, other: str) -> bool:
    return one == other or one.startswith(f"{other}/") or other.startswith(f"{one}/")


def path_rules(config: StackConfig) -> list[Violation]:
    """The shared sites directory apart from the backup directories: a backup inside the sites
    it backs up grows with every run, and sites inside the backups are pruned with them."""
    sites = config.storage.sites
    if not isinstance(sites, SharedPathStorage):
        return []
    others = [("backup.hostPath", config.backup.host_path)]
    if config.restore is not None and config.restore.host_path is not None:
        others.append(("restore.hostPath", config.restore.host_path))
    return [
        Violation(
            "storage.sites.path",
            sites.path,
            f"a directory apart from {key} ({path}): neither may be or contain the other, or "
            "the backups copy themselves and their pruning deletes sites",
        )
        for key, path in others
        if _overlap(sites.path, path)
    ]
