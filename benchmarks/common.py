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


def proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every process, from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
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
