"""Private Redis and Postgres servers for the fault drills, which restart them.

The machine's Redis and Postgres serve other engineers' tests, so a drill that restarts its
broker or its database runs its own: a redis-server on a free port that keeps nothing on
disk (a restart loses every queue, as the issue's Redis does), and a Postgres cluster
initialised in a temporary directory (a restart drops every connection). Both are stopped
and their directories removed on exit, whatever happened; a missing binary skips the test
with the reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["PrivatePostgres", "PrivateRedis", "free_port", "private_postgres", "private_redis"]

HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0
POSTGRES_BIN_ROOT = Path("/usr/lib/postgresql")
DATABASE = "messplus"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _wait_until(ready: Callable[[], bool], what: str, log: Path) -> None:
    """Poll `ready()` until it is true; fail with the server's log after READY_TIMEOUT_S."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {READY_TIMEOUT_S:g} s:\n{_tail(log)}")
        time.sleep(0.05)


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class PrivateRedis:
    """A redis-server child without persistence; `restart()` comes back empty."""

    binary: str
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.workdir / "redis.log"

    def start(self) -> None:
        import redis

        command = [
            self.binary,
            "--bind", HOST,
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.workdir),
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        client = redis.Redis(HOST, self.port, socket_connect_timeout=1)

        def answers() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited:\n{_tail(self.log_path)}")
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        try:
            _wait_until(answers, "redis-server", self.log_path)
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 10 s); with no save points nothing is written."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def restart(self, down_s: float = 0.0) -> None:
        """Stop, stay down `down_s`, start again on the same port with an empty dataset."""
        self.stop()
        persisted = [p.name for p in self.workdir.iterdir() if p.suffix in (".rdb", ".aof")]
        assert not persisted, f"redis-server persisted {persisted}: the restart would keep data"
        time.sleep(down_s)
        self.start()


@dataclass
class PrivatePostgres:
    """A Postgres cluster in a temporary directory; `restart()` drops every connection.

    As root, the server runs as the `postgres` user (it refuses to run as root).
    """

    bin_dir: Path
    port: int
    workdir: Path
    run_as: list[str]

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        return self.workdir / "postgres.log"

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/postgres"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/{DATABASE}"

    def _run(self, tool: str, *args: str) -> None:
        command = [*self.run_as, str(self.bin_dir / tool), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(
                f"{tool} {' '.join(args)} failed ({result.returncode}):\n{result.stdout}"
                f"{result.stderr}\n{_tail(self.log_path)}"
            )

    def _pg_ctl(self, action: str, *args: str) -> None:
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses={HOST} -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_path), "-o", options, "-w",
            "-t", str(int(READY_TIMEOUT_S)), action, *args,
        )  # fmt: skip

    def init(self) -> None:
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", "postgres", "-A", "trust",
            "--no-sync", "--no-instructions", "-E", "UTF8",
        )  # fmt: skip

    def start(self) -> None:
        self._pg_ctl("start")

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every session (clients see their connection terminated) and stops."""
        if (self.data_dir / "postmaster.pid").exists():
            self._pg_ctl("stop", "-m", mode)

    def restart(self, down_s: float = 0.0) -> None:
        """Stop (dropping every connection), stay down `down_s`, start on the same port."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def create_database(self) -> None:
        """The drill's database, migrated to head through Alembic like any deployment."""
        from sqlalchemy import create_engine, text

        from db.migrate import upgrade

        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{DATABASE}"'))
        finally:
            admin.dispose()
        upgrade(self.url)

    def kill_leftovers(self) -> None:
        """SIGKILL the postmaster if `pg_ctl stop` could not stop it."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed: the Redis restart drill needs its own server")
    server = PrivateRedis(binary, free_port(), Path(tempfile.mkdtemp(prefix="messplus-redis-")))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


def _postgres_bin_dir() -> Path | None:
    """The newest installed server's bin/ (Debian layout), else initdb on the PATH."""
    versions = sorted(
        (p for p in POSTGRES_BIN_ROOT.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _run_as_postgres(workdir: Path) -> list[str] | None:
    """The command prefix that runs the server's tools as a non-root user, or None."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    try:
        import pwd

        account = pwd.getpwnam("postgres")
    except KeyError:
        return None
    if runuser is None:
        return None
    os.chown(workdir, account.pw_uid, account.pw_gid)
    return [runuser, "-u", "postgres", "--"]


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    bin_dir = _postgres_bin_dir()
    if bin_dir is None:
        pytest.skip(f"no Postgres server binaries (initdb, pg_ctl) under {POSTGRES_BIN_ROOT}")
    workdir = Path(tempfile.mkdtemp(prefix="messplus-pg-"))
    run_as = _run_as_postgres(workdir)
    if run_as is None:
        shutil.rmtree(workdir, ignore_errors=True)
        pytest.skip("running as root without a `postgres` user and runuser to start Postgres")
    server = PrivatePostgres(bin_dir, free_port(), workdir, run_as)
    try:
        server.init()
        server.start()
        server.create_database()
        yield server
    finally:
        try:
            server.stop("immediate")
        finally:
            server.kill_leftovers()
            shutil.rmtree(workdir, ignore_errors=True)
