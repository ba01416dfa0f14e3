"""Celery worker processes of a local deployment, for tests, benchmarks and fault drills,
and the HTTP API beside them (`api_server`).

Each worker runs in a session of its own (so a stop reaches its children) with its log in
a file; `stop()` ends every one and leaves no process behind, `kill()` stops one abruptly
(kill -9), as a crash would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Fleet", "api_server", "local_deployment", "worker_environment"]


def worker_environment(**settings: str) -> dict[str, str]:
    """This process's environment without MESSPLUS_ variables, plus the given settings
    (keyword names are setting names: database_url=... becomes MESSPLUS_DATABASE_URL)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MESSPLUS_")}
    environment |= {f"MESSPLUS_{name.upper()}": value for name, value in settings.items()}
    return environment


@dataclass
class Fleet:
    """Worker processes sharing one environment; logs go to log_dir/<name>.log."""

    environment: dict[str, str]
    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(
        self,
        name: str,
        queues: list[str],
        *,
        app: str = "workers.app",
        concurrency: int = 1,
        loglevel: str = "WARNING",
    ) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        pool = ["--pool", "solo"] if concurrency == 1 else ["-c", str(concurrency)]
        with (self.log_dir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    app,
                    "worker",
                    "-Q",
                    ",".join(queues),
                    *pool,
                    "-n",
                    f"{name}@%h",
                    "--loglevel",
                    loglevel,
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                env=self.environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[name] = process
        return process

    def kill(self, name: str) -> None:
        """SIGKILL the worker and everything in its session: a crash, not a shutdown. It
        leaves the fleet, so `processes` holds the workers expected to be running."""
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop_one(self, name: str, timeout_s: float = 30.0) -> None:
        """Stop one worker as a supervisor would (SIGTERM: it finishes its task first)."""
        process = self.processes.pop(name)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self, timeout_s: float = 30.0) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def logs(self, tail_chars: int = 3000) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-tail_chars:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )


@contextmanager
def local_deployment(log_dir: Path, **settings: str) -> Iterator[Fleet]:
    """This process and the workers it starts, pointed at one local deployment.

    MESSPLUS_* variables are set here for the duration (and restored after), cached
    engines and clients are dropped and the Celery app is re-pointed at the broker, so a
    test or benchmark can run a deployment of its own in a process that ran others before.
    Every worker started on the yielded fleet is stopped on exit.
    """
    from workers import runtime
    from workers.app import use_broker

    environment = worker_environment(**settings)
    ours = {key: value for key, value in environment.items() if key.startswith("MESSPLUS_")}
    saved = {key: os.environ.get(key) for key in ours}
    os.environ.update(ours)
    runtime.close()
    use_broker(settings["broker_url"])
    fleet = Fleet(environment, log_dir)
    try:
        yield fleet
    finally:
        fleet.stop()
        runtime.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def api_server(environment: dict[str, str], log: Path, port: int) -> Iterator[tuple[str, int]]:
    """`messplus api serve` (one uvicorn process) in a session of its own, started as a
    command so nothing here imports api/; yields (base URL, pid) once /healthz answers,
    and stops it on exit."""
    import urllib.request

    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "api", "serve", "--port", str(port)],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"the API did not start:\n{tail}") from None
                time.sleep(0.1)
        yield url, process.pid
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
