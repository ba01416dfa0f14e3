"""Predictor versions: publish, find the active one cheaply, roll back."""

from __future__ import annotations

import json
import pickle

import pytest
from sqlalchemy import inspect, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from db.errors import InvalidValue, UnknownPredictorVersion
from db.models import PredictorVersion
from db.predictors import (
    activate,
    active_version,
    active_version_id,
    list_versions,
    publish_version,
)


def _blob(weights: list[float]) -> bytes:
    return json.dumps({"weights": weights}).encode()


def test_publish_activate_and_roll_back(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        assert active_version(session) is None and active_version_id(session) is None
        first = publish_version(session, _blob([1.0]), {"auc": 0.7}, "first", activate=True)
        candidate = publish_version(session, _blob([2.0]), {"auc": 0.6}, "worse")
        assert active_version_id(session) == first.id
    with sessions.begin() as session:
        better = publish_version(session, _blob([3.0]), {"auc": 0.8}, "better", activate=True)
        assert active_version_id(session) == better.id
    with sessions.begin() as session:
        active = active_version(session)
        assert active is not None
        assert (active.id, active.blob, active.metrics, active.note) == (
            better.id,
            _blob([3.0]),
            {"auc": 0.8},
            "better",
        )
        assert activate(session, first.id).active
    with sessions.begin() as session:
        assert active_version_id(session) == first.id
        versions = list_versions(session)
        assert [v.id for v in versions] == [better.id, candidate.id, first.id]
        assert [v.active for v in versions] == [False, False, True]
        assert "blob" in inspect(versions[0]).unloaded  # listing leaves the weights behind
        assert versions[0].created_at.tzinfo is not None


def test_only_json_blobs(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        with pytest.raises(InvalidValue, match="JSON"):
            publish_version(session, pickle.dumps({"weights": [1.0]}), {})
        with pytest.raises(InvalidValue, match="JSON"):
            publish_version(session, b"not json", {})


def test_unknown_version(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session, pytest.raises(UnknownPredictorVersion, match="42"):
        activate(session, 42)


def test_the_schema_allows_one_active_version(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        publish_version(session, _blob([1.0]), {}, activate=True)
        other = publish_version(session, _blob([2.0]), {})
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.execute(
            update(PredictorVersion).where(PredictorVersion.id == other.id).values(active=True)
        )
