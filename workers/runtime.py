"""Per-process resources of a worker or client, created on first use and then reused.

Engines, Triton clients and the router's random generator are built when a process first
needs them (never at import) and live as long as the process; `close()` releases them at
worker shutdown.
"""

from __future__ import annotations

import functools

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_sessionmaker
from workers.routing import PredictorCache
from workers.settings import Settings, load_settings
from workers.triton_client import InferenceClient, connect

__all__ = ["close", "inference_client", "predictor_cache", "rng", "sessions", "settings"]


@functools.cache
def settings() -> Settings:
    return load_settings()


@functools.cache
def sessions() -> sessionmaker[Session]:
    return make_sessionmaker(make_engine(settings().database_url))


@functools.cache
def inference_client() -> InferenceClient:
    config = settings()
    return connect(config.triton_url, client_timeout_s=config.infer_timeout_s)


@functools.cache
def rng() -> np.random.Generator:
    """Seeded from MESSPLUS_ROUTER_SEED when set (reproducible runs), else from the OS."""
    return np.random.default_rng(settings().router_seed)


@functools.cache
def predictor_cache() -> PredictorCache:
    return PredictorCache()


def close() -> None:
    """Release connections: clients first (Triton waits for open ones), then engines."""
    if inference_client.cache_info().currsize:
        inference_client().close()
    if sessions.cache_info().currsize:
        engine = sessions().kw["bind"]
        engine.dispose()
    for cached in (settings, sessions, inference_client, rng, predictor_cache):
        cached.cache_clear()
