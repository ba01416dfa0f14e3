"""Shared inputs of the router tests: a synthetic zoo with known truth, and the shared data."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.synthetic import SyntheticZoo, synthetic_zoo

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "llama3-zoo"


@pytest.fixture(scope="session")
def zoo() -> SyntheticZoo:
    return synthetic_zoo(3000, seed=7)


def shared_csv(name: str) -> Path:
    """A shared benchmark file, or a clean skip when ../shared is not beside the project."""
    path = SHARED_DATA / f"{name}.csv"
    if not path.is_file():
        pytest.skip(f"shared data set {path} is absent (it is read from ../shared at run time)")
    return path
