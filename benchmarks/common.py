"""What the benchmarks share: the machine's description and the writer of docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    cpus = os.cpu_count()
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        mem = f", {kb / 1024**2:.0f} GiB RAM"
    except OSError:
        pass
    return (
        f"{platform.processor() or platform.machine()}, {cpus} cores{mem}, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}"
    )


def write_section(text: str, section: str | None = None) -> None:
    """Replace a benchmark's section of docs/benchmarks.md, keep the others.

    The heading is ``section``, by default ``text``'s first line.
    """
    section = section or text.splitlines()[0]
    path = ROOT / "docs" / "benchmarks.md"
    old = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if section in old:
        start = old.index(section)
        nxt = old.find("\n## ", start + len(section))
        old = old[:start] + (old[nxt + 1 :] if nxt != -1 else "")
    path.write_text(old.rstrip("\n") + "\n\n" + text)


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first); None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every process, from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(entry)) is not None:
            table[int(entry)] = (int(fields[1]), fields[19])
    return table


def descendants(pid: int) -> set[tuple[int, str]]:
    """(pid, start time) of every descendant of ``pid``.

    BentoML starts its API worker in a session of its own, outside the server's process group,
    so stopping the group alone may leave it behind.
    """
    table = proc_table()
    children: dict[int, list[int]] = {}
    for child, (parent, _) in table.items():
        children.setdefault(parent, []).append(child)
    out, todo = set(), list(children.get(pid, []))
    while todo:
        child = todo.pop()
        out.add((child, table[child][1]))
        todo.extend(children.get(child, []))
    return out


def processes(root: int, *words: str) -> set[int]:
    """Pids of the descendants of ``root`` whose command line holds every one of ``words``."""
    out = set()
    for pid, _ in descendants(root):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if all(w in cmd for w in words):
            out.add(pid)
    return out


def cpu_seconds(pids: set[int]) -> float:
    """User and system CPU seconds used so far by ``pids`` (those still running), from /proc."""
    total = 0
    for pid in pids:
        if (fields := _stat(pid)) is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants (MB), read from /proc."""
    total = 0
    for child in {pid} | {p for p, _ in descendants(pid)}:
        try:
            with open(f"/proc/{child}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


# --------------------------------------------------------------------------- server-side sockets

_SYS_PIDFD_GETFD = 438  # the same number on every Linux architecture (since 5.6)


def _tcp_peers(port: int) -> dict[int, int]:
    """Socket inode -> remote port of every TCP connection whose local port is ``port``."""
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.readlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            if int(local.rsplit(":", 1)[1], 16) == port and inode:
                out[inode] = int(remote.rsplit(":", 1)[1], 16)
    return out


def accepted_socket(root_pid: int, server_port: int, client_port: int) -> tuple[int, int] | None:
    """(pid, fd) of the process under ``root_pid`` holding the server's end of a connection.

    The connection is the one from ``client_port`` to ``server_port`` on this machine; None
    when no descendant of ``root_pid`` (or itself) holds it. Read from /proc (Linux).
    """
    peers = _tcp_peers(server_port)
    inodes = {inode for inode, remote in peers.items() if remote == client_port}
    for pid in [root_pid] + sorted(p for p, _ in descendants(root_pid)):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and int(target[8:-1]) in inodes:
                return pid, int(fd)
    return None


def tcp_nodelay(pid: int, fd: int) -> bool:
    """Whether TCP_NODELAY is set on socket ``fd`` of process ``pid`` (Linux 5.6+).

    Reads the option on a copy of the descriptor taken with ``pidfd_getfd``, which needs the
    right to trace ``pid`` (a descendant of this process, or root).

    Raises
    ------
    OSError
        When the descriptor cannot be copied (no such process, or not allowed).
    """
    import ctypes
    import socket

    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        copy = libc.syscall(_SYS_PIDFD_GETFD, pidfd, fd, 0)
        if copy < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"pidfd_getfd of fd {fd} of process {pid}: {os.strerror(err)}")
    finally:
        os.close(pidfd)
    with socket.socket(fileno=copy) as sock:  # closes the copy only
        return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


def train_and_select(cohort, config):
    """What ``bonemet train`` fits and chooses, without MLflow: every family's run
    (:func:`training.fitting.family_run.family_outcomes`, the final model on every training
    patient), the run's stack (:func:`training.fitting.stack.stack_or_skip`) and the challenger
    by :func:`training.registry.selection.select` on the paired out-of-fold losses with
    ``train``'s groups and default rule. Returns ``(outcomes by family, selection, candidates,
    by_rule)``: ``by_rule`` the selection of every rule :func:`select` knows (the default's is
    ``selection``); a candidate's ``version`` is its family's position (1-based) among the
    fitted ones, the stack last."""
    from dataclasses import dataclass

    from training.fitting.data import prepare_training_data
    from training.fitting.family_run import FamilyOutcome, SilentProgress, family_outcomes
    from training.fitting.stack import stack_or_skip
    from training.registry import selection as choose

    @dataclass
    class Candidate:
        version: str
        family: str
        metrics: dict

    data = prepare_training_data(cohort, config)
    outcomes = {
        o.family: o for o in family_outcomes(data, SilentProgress()) if isinstance(o, FamilyOutcome)
    }
    stacked = stack_or_skip(list(outcomes.values()), data)
    if isinstance(stacked, FamilyOutcome):
        outcomes[stacked.family] = stacked
    candidates = [
        Candidate(str(i + 1), name, {**o.test.flat("test_"), **o.cv})
        for i, (name, o) in enumerate(outcomes.items())
    ]
    losses = {c.version: outcomes[c.family].oof_loss for c in candidates}
    groups = choose.patient_groups(data.X_train)
    selection = choose.select(candidates, config.selection_metric, losses=losses, groups=groups)
    by_rule = {
        rule: choose.select(
            candidates, config.selection_metric, losses=losses, groups=groups, rule=rule
        )
        for rule in choose.RULES
    }
    return outcomes, selection, candidates, by_rule
