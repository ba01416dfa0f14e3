"""What is running on this machine, for tests that check nothing was left behind; and
processes run with their stdout broken the ways a shell breaks it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["STDOUT_KINDS", "processes_matching", "run_with_stdout"]

# pipe: read by the caller; gone: a pipe whose reader has left (`| head -0`); closed:
# file descriptor 1 closed (`>&-`).
STDOUT_KINDS = ("pipe", "gone", "closed")


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


def run_with_stdout(
    command: Sequence[str],
    stdout: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float,
) -> subprocess.CompletedProcess[str]:
    """Run `command` with stderr captured and stdout as `stdout` (STDOUT_KINDS) says;
    what it printed on stdout is "" unless it is "pipe". Raises TimeoutExpired."""
    if stdout not in STDOUT_KINDS:
        raise ValueError(f"stdout must be one of {STDOUT_KINDS}, got {stdout!r}")
    argv = list(command)
    if stdout == "closed":
        argv = ["sh", "-c", 'exec "$@" >&-', "sh", *argv]
    target: int = subprocess.PIPE
    if stdout == "gone":
        read_end, target = os.pipe()
        os.close(read_end)
    try:
        result = subprocess.run(
            argv,
            cwd=cwd,
            env=dict(env),
            stdout=target,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout_s,
        )
    finally:
        if stdout == "gone":
            os.close(target)
    result.stdout = result.stdout or ""
    return result
