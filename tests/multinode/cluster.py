"""Three Docker Engines on this machine, each its own swarm node, joined into one swarm.

Each node is a dockerd in its own network namespace (a veth pair into one host bridge), with its
own hostname, socket, data root and exec root; overlay traffic (VXLAN) crosses the bridge between
the namespaces like it crosses a LAN between machines. The nodes share this machine's file system,
so a directory here stands in for storage every node mounts at the same path (an NFS, CephFS or
GlusterFS mount on each host). ``nsenter`` rather than ``ip netns exec``: the latter remounts
/sys and hides the cgroup mounts dockerd needs.

    python -m tests.multinode.cluster up|down   # by hand, as root

Everything is found again by name (bridge, namespaces, pid files), so ``down`` also cleans up
after an aborted run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

BRIDGE = "bcmn0"
HOST_ADDRESS = "10.77.0.1"
PREFIX = 24
LOG_DIR = Path("/var/log/brandclub-multinode")
# The namespace, veth and file names all start with this, so leftovers are found by name.
NAME = "bcmn"
NODE_COUNT = 3
START_TIMEOUT = 90
# Each node its own hostname (Swarm names nodes by it).
UTS = ("unshare", "--uts")


@dataclass(frozen=True)
class Node:
    index: int

    @property
    def hostname(self) -> str:
        return f"{NAME}-node{self.index}"

    @property
    def netns(self) -> str:
        return self.hostname

    @property
    def address(self) -> str:
        return f"10.77.0.{10 + self.index}"

    @property
    def veth_host(self) -> str:
        return f"{NAME}{self.index}h"

    @property
    def veth_node(self) -> str:
        return f"{NAME}{self.index}n"

    @property
    def socket(self) -> str:
        return f"/var/run/docker-{self.hostname}.sock"

    @property
    def host(self) -> str:
        """The engine's address for ``docker -H`` and ``DOCKER_HOST``."""
        return f"unix://{self.socket}"

    @property
    def data_root(self) -> Path:
        return Path(f"/var/lib/docker-{self.hostname}")

    @property
    def exec_root(self) -> Path:
        return Path(f"/var/run/docker-{self.hostname}")

    @property
    def pidfile(self) -> Path:
        return Path(f"/var/run/docker-{self.hostname}.pid")

    @property
    def log(self) -> Path:
        return LOG_DIR / f"{self.hostname}.log"

    def docker(
        self, *args: str, check: bool = True, timeout: float = 120, stdin: str | None = None
    ) -> str:
        result = subprocess.run(
            ["docker", "-H", self.host, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
        )
        if check and result.returncode != 0:
            detail = result.stderr.strip() or result.stdout
            raise RuntimeError(f"{self.hostname}: docker {' '.join(args)}: {detail}")
        return result.stdout.strip()

    def answers(self) -> bool:
        try:
            result = subprocess.run(
                ["docker", "-H", self.host, "info", "--format", "{{.ID}}"],
                capture_output=True,
                timeout=10,
            )
        except subprocess.TimeoutExpired:
            return False
        return result.returncode == 0

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if Path(f"/proc/{pid}").exists() else None


NODES = tuple(Node(index) for index in range(1, NODE_COUNT + 1))
FORWARD_RULE = ("FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT")
SUBNET = f"{HOST_ADDRESS.rsplit('.', 1)[0]}.0/{PREFIX}"
# Every rule the tier adds is marked with this comment, so ``down`` finds them all again.
RULE_COMMENT = ("-m", "comment", "--comment", NAME)


def nameservers(resolv_conf: Path = Path("/etc/resolv.conf")) -> list[str]:
    """The IPv4 name servers this machine resolves with (the engines read the same file)."""
    found = []
    for line in resolv_conf.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver" and fields[1].count(".") == 3:
            found.append(fields[1])
    return found


def resolver_rules(servers: list[str]) -> list[tuple[str, ...]]:
    """iptables rules that let the nodes ask this machine's name servers, and nothing else.

    A dockerd resolves registry names twice for every task it starts from a tag: the manager
    pins the tag to a digest at ``service create``, and the node pulls before it runs a local
    image (moby's daemon/cluster/executor/container/controller.go: "We always try to pull the
    image"). Both give up on an error and go on with the local image. Without these rules the
    queries from a namespace leave through the host unanswered, and each lookup waits out its
    timeout (20 s at ``service create``, 20 s again on the node): 40 s per site job, and most
    of a rescheduling. With them, the nodes' lookups end as fast as the host's own, as on a
    real network with a working resolver. Only DNS to those servers is forwarded and
    masqueraded: the nodes reach nothing else beyond the bridge.
    """
    rules: list[tuple[str, ...]] = []
    for server in servers:
        for protocol in ("udp", "tcp"):
            match = ("-p", protocol, "-s", SUBNET, "-d", server, "--dport", "53")
            rules.append(("-t", "nat", "POSTROUTING", *match, *RULE_COMMENT, "-j", "MASQUERADE"))
            rules.append(("FORWARD", "-i", BRIDGE, *match, *RULE_COMMENT, "-j", "ACCEPT"))
            rules.append(
                (
                    "FORWARD",
                    "-o",
                    BRIDGE,
                    *("-p", protocol, "-s", server, "-d", SUBNET, "--sport", "53"),
                    *("-m", "conntrack", "--ctstate", "ESTABLISHED"),
                    *RULE_COMMENT,
                    "-j",
                    "ACCEPT",
                )
            )
    return rules


def _insert(rule: tuple[str, ...]) -> None:
    table, chain_and_match = (rule[:2], rule[2:]) if rule[0] == "-t" else ((), rule)
    run("iptables", *table, "-I", *chain_and_match)


def _delete_all(rule: tuple[str, ...]) -> None:
    table, chain_and_match = (rule[:2], rule[2:]) if rule[0] == "-t" else ((), rule)
    while run("iptables", *table, "-C", *chain_and_match, check=False).returncode == 0:
        run("iptables", *table, "-D", *chain_and_match)


def run(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()}")
    return result


def _network_up() -> None:
    run("ip", "link", "add", BRIDGE, "type", "bridge")
    run("ip", "addr", "add", f"{HOST_ADDRESS}/{PREFIX}", "dev", BRIDGE)
    run("ip", "link", "set", BRIDGE, "up")
    # Once any dockerd has run here, FORWARD drops by default and bridged frames go through
    # iptables: without this rule the joins time out.
    run("iptables", "-I", *FORWARD_RULE)
    # The host routes the nodes' DNS queries (resolver_rules); dockerd turns forwarding on too,
    # but the tier may be the first to run here.
    run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
    for rule in resolver_rules(nameservers()):
        _insert(rule)
    for node in NODES:
        run("ip", "netns", "add", node.netns)
        run("ip", "link", "add", node.veth_host, "type", "veth", "peer", "name", node.veth_node)
        run("ip", "link", "set", node.veth_host, "master", BRIDGE, "up")
        run("ip", "link", "set", node.veth_node, "netns", node.netns)
        inside = ("ip", "-n", node.netns)
        run(*inside, "addr", "add", f"{node.address}/{PREFIX}", "dev", node.veth_node)
        run(*inside, "link", "set", node.veth_node, "up")
        run(*inside, "link", "set", "lo", "up")
        run(*inside, "route", "add", "default", "via", HOST_ADDRESS)


def _start_engine(node: Node) -> None:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    dockerd = (
        f"hostname {node.hostname}; exec dockerd --data-root {node.data_root} "
        f"--exec-root {node.exec_root} -H {node.host} --pidfile {node.pidfile} "
        "--storage-driver overlay2"
    )
    with node.log.open("ab") as log:
        subprocess.Popen(
            ["nsenter", f"--net=/var/run/netns/{node.netns}", *UTS, "sh", "-c", dockerd],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_engines(nodes: tuple[Node, ...], timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    for node in nodes:
        while not node.answers():
            if time.monotonic() > deadline:
                tail = node.log.read_text(errors="replace").splitlines()[-15:]
                raise RuntimeError(f"{node.hostname} did not come up:\n" + "\n".join(tail))
            time.sleep(0.5)


def up() -> tuple[Node, ...]:
    """The bridge, the namespaces, three engines, and a swarm: node 1 its only manager (a
    worker's loss never touches the quorum), nodes 2 and 3 workers."""
    down()  # leftovers of an aborted run
    _network_up()
    for node in NODES:
        _start_engine(node)
    _wait_engines(NODES)
    manager, *workers = NODES
    manager.docker("swarm", "init", "--advertise-addr", manager.address)
    token = manager.docker("swarm", "join-token", "-q", "worker")
    for node in workers:
        node.docker(
            "swarm",
            "join",
            "--advertise-addr",
            node.address,
            "--token",
            token,
            f"{manager.address}:2377",
            timeout=60,
        )
    return NODES


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (containerd, the shims, the containers' processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def _shims(node: Node) -> list[int]:
    """The node's container shims: they leave dockerd's process tree (they re-parent to init),
    and each holds a container; found by the node's exec root on their command line."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            command
            and command[0].endswith(b"containerd-shim-runc-v2")
            and any(arg.startswith(str(node.exec_root).encode()) for arg in command)
        ):
            found.append(int(entry.name))
    return found


def crash(node: Node) -> None:
    """The node fails as a machine does when its power goes: its engine, containerd, the shims
    and every container are killed at once, nothing is stopped cleanly."""
    pid = node.pid()
    roots = ([pid] if pid is not None else []) + _shims(node)
    if not roots:
        raise RuntimeError(f"{node.hostname} is not running")
    victims = [victim for root in roots for victim in [root, *descendants(root)]]
    for victim in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)


def _remove_engine(node: Node) -> None:
    """Kill the engine and everything below it (the tier throws the node away: nothing needs
    a clean stop), unmount what its containers left mounted, remove its roots."""
    if node.pid() is not None or _shims(node):
        crash(node)
    # /var/run is a link to /run: the mount table names the resolved paths.
    roots = tuple(str(path.resolve()) for path in (node.data_root, node.exec_root))
    mounts = [
        line.split()[1]
        for line in Path("/proc/self/mounts").read_text().splitlines()
        if line.split()[1].startswith(roots)
    ]
    for mountpoint in sorted(mounts, key=len, reverse=True):
        run("umount", "-l", mountpoint, check=False)
    for path in (node.data_root, node.exec_root):
        shutil.rmtree(path, ignore_errors=True)
    for path in (node.pidfile, Path(node.socket)):
        path.unlink(missing_ok=True)


def down() -> None:
    """Stop every engine by its pid file and remove its data roots, then the namespaces (their
    veths go with them), the bridge and the iptables rule."""
    with ThreadPoolExecutor(len(NODES)) as pool:
        list(pool.map(_remove_engine, NODES))
    for node in NODES:
        if Path(f"/var/run/netns/{node.netns}").exists():
            run("ip", "netns", "del", node.netns, check=False)
        run("ip", "link", "del", node.veth_host, check=False)
    run("ip", "link", "del", BRIDGE, check=False)
    for rule in (FORWARD_RULE, *resolver_rules(nameservers())):
        _delete_all(rule)


if __name__ == "__main__":
    {"up": up, "down": down}[sys.argv[1]]()
