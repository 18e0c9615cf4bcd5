"""The frontend's nginx template (components/nginx/frappe.conf.template), as the Frappe image's
unchanged nginx-entrypoint.sh renders it: what it substitutes, and what the rendered site does
differently from frappe_docker's on purpose (issue 9 items 6 and 7)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from components.frappe.processes import FRONTEND_SCRIPT
from components.swarm.configs import NGINX_TEMPLATE

# The variables nginx-entrypoint.sh passes to envsubst (frappe_docker,
# resources/core/nginx/nginx-entrypoint.sh); envsubst replaces these, in the $NAME and ${NAME}
# forms, and leaves every other dollar sign alone.
ENTRYPOINT_VARIABLES = (
    "BACKEND",
    "SOCKETIO",
    "UPSTREAM_REAL_IP_ADDRESS",
    "UPSTREAM_REAL_IP_HEADER",
    "UPSTREAM_REAL_IP_RECURSIVE",
    "FRAPPE_SITE_NAME_HEADER",
    "PROXY_READ_TIMEOUT",
    "CLIENT_MAX_BODY_SIZE",
)
# The frontend's environment as the program renders it for prod (tests/test_app_layer.py).
FRONTEND_ENV = {
    "BACKEND": "backend:8000",
    "SOCKETIO": "websocket:9000",
    "FRAPPE_SITE_NAME_HEADER": "brandclub.com",
    "UPSTREAM_REAL_IP_ADDRESS": "10.0.0.0/8",
    "UPSTREAM_REAL_IP_HEADER": "X-Forwarded-For",
    "UPSTREAM_REAL_IP_RECURSIVE": "off",
    "PROXY_READ_TIMEOUT": "120",
    "CLIENT_MAX_BODY_SIZE": "50m",
}


def envsubst(text: str, env: dict[str, str]) -> str:
    """GNU envsubst with a variable list: only the listed names, in both forms."""
    names = "|".join(ENTRYPOINT_VARIABLES)
    return re.sub(rf"\$(?:\{{({names})\}}|({names})\b)", lambda m: env[m[1] or m[2]], text)


def _without_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


@pytest.fixture(scope="module")
def template() -> str:
    return NGINX_TEMPLATE.source.read_text()


@pytest.fixture(scope="module")
def rendered_site(template: str) -> str:
    return _without_comments(envsubst(template, FRONTEND_ENV))


def _location(site: str, head: str) -> str:
    """The body of the location block that starts with ``head``."""
    start = site.index(head)
    depth = 0
    for index in range(site.index("{", start), len(site)):
        depth += {"{": 1, "}": -1}.get(site[index], 0)
        if depth == 0:
            return site[start : index + 1]
    raise AssertionError(f"unterminated block {head}")


def test_the_template_uses_only_what_the_entrypoint_substitutes(template: str) -> None:
    used = set(re.findall(r"\$\{(\w+)\}", template))
    assert used <= set(ENTRYPOINT_VARIABLES), used - set(ENTRYPOINT_VARIABLES)
    # An nginx variable spelled like one of them would be replaced by envsubst.
    bare = set(re.findall(r"\$([A-Z_]+)\b", template))
    assert not bare, bare


SOCKETIO_SERVERS = "/etc/nginx/conf.d/socketio-servers.inc"


def _upstreams(site: str) -> dict[str, str]:
    """Each upstream block's name and body."""
    return {
        match[1]: _location(site, match[0])
        for match in re.finditer(r"^\s*upstream\s+(\S+)", site, re.MULTILINE)
    }


def test_the_backend_is_resolved_per_request(rendered_site: str) -> None:
    """An upstream block is resolved when nginx starts; after a task replacement nginx would
    keep the dead address (issue 9 item 6). The backend goes through a variable instead."""
    assert set(_upstreams(rendered_site)) == {"frappe_socketio"}
    assert "resolver 127.0.0.11 valid=5s ipv6=off;" in rendered_site
    block = _location(rendered_site, "location @webserver")
    assert "set $frappe_backend backend:8000;" in block
    assert re.findall(r"proxy_pass\s+([^;]+);", block) == ["http://$frappe_backend"]


def test_a_client_stays_on_one_websocket_task(rendered_site: str) -> None:
    """A polling session lives on the task that answered its handshake (issue 26): the
    websocket upstream picks a task by a consistent hash of the client's real address (a cookie
    may come with some requests of a session and not others), over the task list the frontend's
    command keeps current."""
    upstream = _upstreams(rendered_site)["frappe_socketio"]
    assert re.findall(r"^\s*(\w+)\s", upstream.split("{", 1)[1], re.MULTILINE) == [
        "hash",
        "include",
    ]
    assert "hash $remote_addr consistent;" in upstream
    assert f"include {SOCKETIO_SERVERS};" in upstream
    block = _location(rendered_site, "location /socket.io")
    assert re.findall(r"proxy_pass\s+([^;]+);", block) == ["http://frappe_socketio"]


def test_the_frontend_command_writes_the_file_the_template_includes() -> None:
    assert f': "${{SOCKETIO_SERVERS_FILE:={SOCKETIO_SERVERS}}}"' in FRONTEND_SCRIPT


def test_retries_only_what_never_reached_a_server(rendered_site: str) -> None:
    """error/timeout go to the next address; POST/PATCH/LOCK already sent are never repeated
    (no non_idempotent), and a dead address is given up on after 500 ms, not nginx's 60 s
    (issue 24 item 4: at 5 s a client gave up first)."""
    assert re.findall(r"proxy_next_upstream\s+([^;]+);", rendered_site) == ["error timeout"]
    assert "non_idempotent" not in rendered_site
    assert "proxy_connect_timeout 500ms;" in rendered_site


def test_health_location_is_nginx_alone_and_local_only(rendered_site: str) -> None:
    block = _location(rendered_site, "location = /.brandclub/nginx-health")
    assert "allow 127.0.0.1;" in block and "deny all;" in block
    # A content handler: `return` would answer in the rewrite phase, before allow/deny run.
    assert "stub_status;" in block
    assert "return" not in block and "proxy_pass" not in block


def test_realtime_origin_is_the_site_on_the_frontends_own_port(rendered_site: str) -> None:
    """Frappe's realtime server checks the session at <Origin>/api/method/...; the site's name
    on port 8080 is nginx on the realtime network, and its host name still equals Host."""
    block = _location(rendered_site, "location /socket.io")
    assert "proxy_set_header Origin http://brandclub.com:8080;" in block
    assert "proxy_set_header X-Frappe-Site-Name brandclub.com;" in block
    assert "proxy_set_header Host $host;" in block


def test_everything_else_is_frappe_dockers(rendered_site: str) -> None:
    for directive in (
        "listen 8080;",
        "server_name brandclub.com;",
        "root /home/frappe/frappe-bench/sites;",
        "include /etc/nginx/snippets/security_headers.conf;",
        "set_real_ip_from 10.0.0.0/8;",
        "real_ip_header X-Forwarded-For;",
        "real_ip_recursive off;",
        "proxy_read_timeout 120;",
        "client_max_body_size 50m;",
        "proxy_set_header X-Use-X-Accel-Redirect True;",
        "try_files /brandclub.com/public/$uri @webserver;",
        "try_files /brandclub.com/$1 =404;",
    ):
        assert directive in rendered_site, directive


# nginx on PATH, or Debian's that `./setup.sh --tests` (test.sh) unpacks into build/tools.
UNPACKED = Path(__file__).resolve().parents[2] / "build" / "tools" / "nginx" / "usr" / "sbin"
NGINX = shutil.which("nginx") or shutil.which("nginx", path=str(UNPACKED))


@pytest.mark.skipif(
    NGINX is None, reason="needs nginx (Debian's, as in the image): ./setup.sh --tests"
)
def test_nginx_accepts_the_rendered_site(rendered_site: str, tmp_path: Path) -> None:
    """``nginx -t`` on the site as the entrypoint writes it, inside an http block like the
    image's nginx.conf (which includes conf.d/*.conf)."""
    snippets = tmp_path / "snippets"
    snippets.mkdir()
    (snippets / "security_headers.conf").write_text(
        'add_header X-Frame-Options "SAMEORIGIN" always;\n'
    )
    servers = tmp_path / "socketio-servers.inc"
    # What the frontend's command writes for two websocket tasks.
    servers.write_text("server 10.0.1.9:9000;\nserver 10.0.1.12:9000;\n")
    site = (
        envsubst(NGINX_TEMPLATE.source.read_text(), FRONTEND_ENV)
        .replace("/etc/nginx/snippets", str(snippets))
        .replace(SOCKETIO_SERVERS, str(servers))
    )
    (tmp_path / "frappe.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\n"
        f"error_log {tmp_path}/error.log;\n"
        "events {}\n"
        "http {\n  access_log off;\n"
        # Temporary files under the test's directory, so nginx -t needs no root.
        + "".join(
            f"  {kind}_temp_path {tmp_path}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + f"  include {tmp_path}/frappe.conf;\n}}\n"
    )
    completed = subprocess.run(
        [str(NGINX), "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
