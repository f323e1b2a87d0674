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
