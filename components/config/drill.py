"""``backup.drill``: the restore drill's settings (docs/backups.md#restore-drills), apart from
the other sections because they are the drill's alone."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from components.config.types import ClockTime, Model, Violation, matching
from components.platform.catalogue import BACKEND, RESTORE_DRILL_METRICS_PORT

# A doctype's name as its table is named (`tab<name>`): the drill hands the list on
# comma-separated and names the tables in SQL, so no comma, quote or backquote.
DoctypeName = Annotated[
    str,
    matching(
        r"[A-Za-z][A-Za-z0-9 _-]{0,60}",
        "a doctype name such as Sales Invoice (letters, digits, spaces, _ and -; at most 61)",
    ),
]
# The restore drill's state folder in backup.hostPath (prepared by the prepare-backup-dir job).
DRILL_STATE_FOLDER = ".restore-drill"
# Where the image's backend listens inside the drill's container while the drill logs in to a
# restored site (the image's start.sh binds the backend's port): the metrics server cannot share
# it.
DRILL_BACKEND_PORT = BACKEND.port


class DrillSettings(Model):
    """``backup.drill``: the restore drill (docs/backups.md#restore-drills)."""

    enabled: bool = False
    interval_days: int = Field(default=7, ge=1, le=31)
    # UTC, after the daily backup (backup.time, 02:00 by default).
    time: ClockTime = "04:00"
    # Whose rows the drill counts in the restored database and in the dump.
    doctypes: list[DoctypeName] = Field(
        default_factory=lambda: ["User", "ToDo"], min_length=1, max_length=64
    )
    metrics_port: int = Field(default=RESTORE_DRILL_METRICS_PORT, ge=1024, le=65535)

    def _broken_rules(self) -> list[Violation]:
        broken = super()._broken_rules()
        if self.metrics_port == DRILL_BACKEND_PORT:
            broken.append(
                Violation(
                    "metricsPort",
                    self.metrics_port,
                    f"another port than {DRILL_BACKEND_PORT}: the drill starts the image's "
                    "backend there to log in to the restored site",
                )
            )
        if len(set(self.doctypes)) != len(self.doctypes):
            broken.append(Violation("doctypes", self.doctypes, "each doctype once"))
        return broken
