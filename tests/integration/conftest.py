"""A real Triton zoo (PyTriton, CPU) started once per test session, on free ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from router.dataset import ZooData
from tests.processes import processes_matching
from workers.zoo_server import ZooProcess, load_zoo, start_zoo_process


def zoo_leftovers(zoo: ZooProcess) -> list[str]:
    """What a stopped zoo left behind: its processes, shared memory, working directory."""
    found = [f"process {p}" for p in processes_matching(str(zoo.workdir))]
    found += [f"shm {path}" for path in Path("/dev/shm").glob(f"pytrtion{zoo.pid}-*")]
    if zoo.workdir.exists():
        found.append(f"directory {zoo.workdir}")
    return found


@pytest.fixture(scope="session")
def leftovers() -> Callable[[ZooProcess], list[str]]:
    return zoo_leftovers


@pytest.fixture(scope="session")
def synthetic_data() -> ZooData:
    """The data the default zoo serves (the same call the server makes)."""
    return load_zoo(None)


@pytest.fixture(scope="session")
def zoo() -> Iterator[ZooProcess]:
    """The default synthetic zoo; its teardown fails if anything of it survives stop()."""
    process = start_zoo_process(None)
    try:
        yield process
    finally:
        process.stop()
    assert zoo_leftovers(process) == []
