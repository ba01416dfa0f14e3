"""What is running on this machine, for tests that check nothing was left behind."""

from __future__ import annotations

from pathlib import Path

__all__ = ["processes_matching"]


def processes_matching(*needles: str) -> list[str]:
    """'pid: command line' of every process whose command line contains any needle."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(needle in cmdline for needle in needles):
            found.append(f"{entry.name}: {cmdline[:120]}")
    return found
