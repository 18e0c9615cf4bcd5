"""What differs between the MariaDB release series this program can deploy.

Frappe needs utf8mb4 everywhere. ``--skip-innodb-read-only-compressed`` exists only for the 10.6
series (10.6 made compressed InnoDB tables read-only by default, which breaks Frappe's older
tables); 11.x removed the option and refuses to start when it is given, so the flag set is chosen
per series rather than hard-coded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

FRAPPE_CHARSET_FLAGS = (
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_unicode_ci",
    "--skip-character-set-client-handshake",
)


@dataclass(frozen=True)
class MariaDBSeries:
    series: str
    community_end_of_life: date
    extra_flags: tuple[str, ...] = ()

    @property
    def server_flags(self) -> tuple[str, ...]:
        return FRAPPE_CHARSET_FLAGS + self.extra_flags

    def end_of_life_warning(self, today: date) -> str | None:
        if today < self.community_end_of_life:
            return None
        return (
            f"MariaDB {self.series} reached its community end of life on "
            f"{self.community_end_of_life.isoformat()} and no longer receives security fixes; "
            f"plan the upgrade (set brandclub:mariadb.version to one of "
            f"{', '.join(s for s in SUPPORTED_SERIES if s != self.series)})."
        )


# Long-term-support series with MariaDB's published community end-of-life dates.
SUPPORTED_SERIES: dict[str, MariaDBSeries] = {
    series.series: series
    for series in (
        MariaDBSeries("10.6", date(2026, 7, 6), ("--skip-innodb-read-only-compressed",)),
        MariaDBSeries("10.11", date(2028, 2, 16)),
        MariaDBSeries("11.4", date(2029, 5, 29)),
        MariaDBSeries("11.8", date(2028, 6, 4)),
    )
}

# mariadb-admin ping exits 0 as soon as the server accepts connections, even when it refuses
# the (absent) credentials, so the check needs no password and works on data directories that
# an older image initialised without a health-check user. Least privilege, then, is no account
# at all: the official image's healthcheck.sh --connect logs in as its own `healthcheck` user
# (USAGE only, from $DATADIR/.my-healthcheck.cnf, which docker-entrypoint.sh's
# create_healthcheck_users writes), never as root; this check does not even need that, and the
# live tier's stand-in image has neither. Either way a root password rotation never reaches it.
# During first initialisation the image runs a temporary server with networking off, so a TCP
# ping stays red until the real server is up.
MARIADB_HEALTHCHECK = ("CMD-SHELL", "mariadb-admin ping --host=127.0.0.1 --silent")
