"""Nightly retraining at scale: 1,000,000 ratings in a fresh Postgres database.

Fills the database with COPY (synthetic prompts from router/synthetic.py repeated, labels
drawn from their true probabilities; every tenth request explored and rated on all three
models, the others rated on the one model that served them), then measures:

- publish: retrain with no active version (the candidate has to beat constant base rates);
- reject: most of the training ratings deleted (every request whose id is not a multiple
  of 100, outside the held-out slice), retrain again: the candidate, trained on ~1% of the
  data, must lose to the active version on the same held-out ratings, and that version
  must stay active.

Each retrain runs in a fresh child process so that its peak RSS (ru_maxrss) is its own,
not the filler's. Prints a markdown table and writes JSON with --json.

    python -m bench.retrain [--rows 1000000] [--batch-size 10000] [--json out/retrain.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from bench.pipeline import POSTGRES_ADMIN
from db.scratch import scratch_database

PROMPT_POOL = 20_000
EXPLORE_EVERY = 10
KEEP_EVERY = 100


def fill(url: str, n_rows: int, seed: int = 0) -> dict[str, Any]:
    """n_rows ratings on ~n_rows / 1.2 requests of one tenant and one job, by COPY."""
    import psycopg
    from sqlalchemy.engine import make_url

    from db.engine import make_engine, make_sessionmaker
    from db.models import Job
    from router.synthetic import synthetic_zoo
    from workers.provision import add_tenant, register_zoo

    started = time.perf_counter()
    zoo = synthetic_zoo(PROMPT_POOL, seed=seed)
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as session:
        model_ids = [m.id for m in register_zoo(session, zoo.data)]
        tenant_id = add_tenant(session, "bench", 0.7).id
        job = Job(id="bench", tenant_id=tenant_id, source="bench", n_requests=0)
        session.add(job)
    engine.dispose()

    rng = np.random.default_rng(seed)
    n_models = len(model_ids)
    per_block = EXPLORE_EVERY - 1 + n_models  # ratings per EXPLORE_EVERY requests
    n_requests = -(-n_rows * EXPLORE_EVERY // per_block)
    now = dt.datetime.now(dt.UTC)
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    written = 0
    with psycopg.connect(conninfo) as conn, conn.cursor() as cursor:
        with cursor.copy(
            "COPY requests (id, job_id, tenant_id, seq, prompt, status, served_model_id, "
            "attempts, created_at, updated_at) FROM STDIN"
        ) as copy:
            for i in range(n_requests):
                served = model_ids[i % n_models]
                prompt = zoo.data.prompts[i % PROMPT_POOL]
                copy.write_row((i + 1, "bench", tenant_id, i, prompt, "done", served, 1, now, now))
        with cursor.copy(
            "COPY feedback (request_id, model_id, tenant_id, satisfied, received_at, updated_at) "
            "FROM STDIN"
        ) as copy:
            for start in range(0, n_requests, 50_000):
                ids = np.arange(start, min(start + 50_000, n_requests))
                truth = zoo.probability[ids % PROMPT_POOL]
                labels = rng.random(truth.shape) < truth
                for i, row in zip(ids.tolist(), labels.tolist(), strict=True):
                    rated = range(n_models) if i % EXPLORE_EVERY == 0 else (i % n_models,)
                    for m in rated:
                        if written == n_rows:
                            break
                        copy.write_row((i + 1, model_ids[m], tenant_id, row[m], now, now))
                        written += 1
        cursor.execute("UPDATE jobs SET n_requests = %s WHERE id = 'bench'", (n_requests,))
        cursor.execute("SELECT setval(pg_get_serial_sequence('requests', 'id'), %s)", (n_requests,))
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return {"requests": n_requests, "ratings": written, "seconds": time.perf_counter() - started}


def drop_training_ratings(url: str) -> int:
    """Delete the ratings of every request outside the held-out slice whose id is not a
    multiple of KEEP_EVERY; returns how many ratings are left."""
    import psycopg
    from sqlalchemy.engine import make_url

    from workers.training import held_out

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn, conn.cursor() as cursor:
        top = cursor.execute("SELECT max(id) FROM requests").fetchone()
        assert top is not None
        ids = np.arange(1, int(top[0]) + 1)
        cursor.execute("CREATE TEMP TABLE keep (id bigint PRIMARY KEY) ON COMMIT DROP")
        with cursor.copy("COPY keep (id) FROM STDIN") as copy:
            for request_id in ids[held_out(ids, 0.1)].tolist():
                copy.write_row((request_id,))
        cursor.execute(
            "DELETE FROM feedback f WHERE f.request_id %% %s <> 0 "
            "AND NOT EXISTS (SELECT 1 FROM keep k WHERE k.id = f.request_id)",
            (KEEP_EVERY,),
        )
        left = cursor.execute("SELECT count(*) FROM feedback").fetchone()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE feedback")
    assert left is not None
    return int(left[0])


def run_retrain(url: str, batch_size: int) -> dict[str, Any]:
    """In a child process: retrain, with this process's peak RSS before and after."""
    from db.engine import make_engine, make_sessionmaker
    from db.predictors import active_version_id
    from workers.training import retrain

    sessions = make_sessionmaker(make_engine(url))
    with sessions.begin() as session:
        before = active_version_id(session)
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    report = retrain(sessions, batch_size=batch_size)
    seconds = time.perf_counter() - started
    with sessions.begin() as session:
        after = active_version_id(session)
    return {
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mb": rss_start / 1024,
        "active_before": before,
        "active_after": after,
        "report": report.to_json(),
    }


def in_child(url: str, batch_size: int) -> dict[str, Any]:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(run_retrain, url, batch_size).result()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="ratings to store")
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    results: dict[str, Any] = {"rows": args.rows, "batch_size": args.batch_size}
    with scratch_database(POSTGRES_ADMIN, "messplus_bench") as url:
        print(f"filling {args.rows:,} ratings ...", file=sys.stderr)
        results["fill"] = fill(url, args.rows)
        print(f"retraining on {results['fill']['ratings']:,} ratings ...", file=sys.stderr)
        results["publish"] = in_child(url, args.batch_size)
        results["publish"]["ratings"] = results["fill"]["ratings"]
        left = drop_training_ratings(url)
        print(f"retraining on the {left:,} ratings left ...", file=sys.stderr)
        results["reject"] = in_child(url, args.batch_size)
        results["reject"]["ratings"] = left

    fill_row = results["fill"]
    print("| run | ratings | seconds | ratings/s | peak RSS MB | decision |")
    print("|---|---|---|---|---|---|")
    print(
        f"| fill (COPY) | {fill_row['ratings']:,} | {fill_row['seconds']:.1f} | "
        f"{fill_row['ratings'] / fill_row['seconds']:,.0f} | - | - |"
    )
    for name in ("publish", "reject"):
        row = results[name]
        report = row["report"]
        decision = (
            f"published {report['published_version_id']}"
            if report["published_version_id"] is not None
            else f"rejected, version {row['active_after']} stays"
        )
        print(
            f"| retrain ({name}) | {row['ratings']:,} | {row['seconds']:.1f} | "
            f"{row['ratings'] / row['seconds']:,.0f} | {row['peak_rss_mb']:.0f} | {decision} |"
        )
    print()
    print("| run | predictor | held-out log-loss | Brier | ECE | n |")
    print("|---|---|---|---|---|---|")
    for name in ("publish", "reject"):
        report = results[name]["report"]
        for label in ("candidate", "active", "baseline"):
            metrics = report[label]
            if metrics is not None:
                print(
                    f"| {name} | {label} | {metrics['log_loss']:.4f} | {metrics['brier']:.4f} | "
                    f"{metrics['ece']:.4f} | {metrics['n']:,} |"
                )
    publish, reject = results["publish"], results["reject"]
    ok = (
        publish["report"]["published_version_id"] is not None
        and reject["report"]["published_version_id"] is None
        and reject["active_after"] == publish["report"]["published_version_id"]
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    if not ok:
        print(
            "unexpected: the better version was not published or the worse one was", file=sys.stderr
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
