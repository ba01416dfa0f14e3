"""Issue 14's end-to-end check: the official `openai` client, unchanged but for base_url,
against `messplus api serve` (uvicorn) over the real pipeline: Redis, Postgres, a router,
a model worker per zoo model and a feedback worker on the CPU Triton zoo.

files.create -> batches.create -> batches.retrieve until completed -> files.content, every
answer rated through the feedback route and counted by `messplus sla`; then a chat call,
a text completion and a batch of text completions end to end, and the API's figures in
the metrics exporter."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import require_services
from tests.faults.services import free_port

pytestmark = pytest.mark.services

N_LINES = 24
TENANT = "acme"


def _lines(prompts: list[str]) -> bytes:
    lines = []
    for i, prompt in enumerate(prompts):
        body: dict[str, Any] = {
            "model": "messplus",
            "messages": [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": prompt},
            ],
        }
        if i % 3 == 1:
            body["max_tokens"] = 2  # the zoo's answers are 4+ words: cut, finish_reason length
        lines.append(
            {"custom_id": f"q{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}
        )
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def test_openai_client_through_the_whole_pipeline(
    postgres_url: str, redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_services()
    from openai import APIStatusError, BadRequestError, ConflictError, OpenAI

    from db.api_keys import create_key
    from workers import queues, runtime
    from workers.cli import main
    from workers.fleet import api_server, local_deployment
    from workers.provision import add_tenant, register_zoo
    from workers.zoo_server import load_zoo, start_zoo_process

    data = load_zoo(None)
    metrics_dir = tmp_path / "metrics"
    with (
        start_zoo_process(None) as zoo,
        local_deployment(
            tmp_path / "logs",
            database_url=postgres_url,
            broker_url=redis_url,
            triton_url=zoo.grpc_url,
            chunk_size="8",
            metrics_dir=str(metrics_dir),
        ) as workers,
    ):
        sessions = runtime.sessions()
        with sessions.begin() as session:
            register_zoo(session, data)
            tenant_id = add_tenant(session, TENANT, 0.6).id
            key = create_key(session, tenant_id)[1]
        workers.start("route", [queues.ROUTE])
        for model in data.models:
            workers.start(f"model-{model}", [queues.model_queue(model)])
        workers.start("feedback", [queues.FEEDBACK])
        log = tmp_path / "logs" / "api.log"
        with api_server(workers.environment, log, free_port()) as (url, _):
            client = OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
            models = {m.id for m in client.models.list()}
            assert models == {"messplus", *data.models}

            uploaded = client.files.create(
                file=("questions.jsonl", _lines(list(data.prompts[:N_LINES]))), purpose="batch"
            )
            assert (uploaded.purpose, uploaded.status, uploaded.filename) == (
                "batch",
                "processed",
                "questions.jsonl",
            )
            batch = client.batches.create(
                input_file_id=uploaded.id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                metadata={"run": "e2e"},
            )
            assert batch.status == "in_progress" and batch.metadata == {"run": "e2e"}
            batch = _until_finished(client, batch, workers)
            assert batch.status == "completed", workers.logs()
            assert batch.request_counts is not None
            assert (batch.request_counts.total, batch.request_counts.completed) == (
                N_LINES,
                N_LINES,
            )
            assert batch.output_file_id and batch.error_file_id is None
            assert batch.id in {b.id for b in client.batches.list(limit=5)}

            output = client.files.content(batch.output_file_id).text
            lines = [json.loads(line) for line in output.splitlines()]
            assert [line["custom_id"] for line in lines] == [f"q{i}" for i in range(N_LINES)]
            for i, line in enumerate(lines):
                assert line["error"] is None and line["response"]["status_code"] == 200
                body = line["response"]["body"]
                assert body["object"] == "chat.completion" and body["model"] in data.models
                answer = body["choices"][0]["message"]["content"]
                # Only the completion: the zoo echoes the prompt unless asked not to.
                assert answer.startswith(f"[{body['model']}]") and data.prompts[i] not in answer
                usage = body["usage"]
                assert usage["completion_tokens"] == len(answer.split()) > 0
                assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
                expected = "length" if i % 3 == 1 else "stop"
                assert body["choices"][0]["finish_reason"] == expected

            # Rate every answer through the feedback route, half by batch and custom_id,
            # half by the answer's id; then once more, changed, for one of them.
            for i, line in enumerate(lines):
                rating: dict[str, Any] = {"satisfied": i % 4 != 0}
                if i % 2:
                    rating |= {"batch_id": batch.id, "custom_id": line["custom_id"]}
                else:
                    rating["response_id"] = line["response"]["body"]["id"]
                queued = client.post("/feedback", body=rating, cast_to=dict)
                assert queued["status"] == "accepted" and queued["satisfied"] is rating["satisfied"]

            # One chat call and one text completion, end to end.
            chat = client.chat.completions.create(
                model="messplus",
                messages=[{"role": "user", "content": data.prompts[N_LINES]}],
                max_tokens=3,
            )
            assert chat.model in data.models and chat.choices[0].finish_reason == "length"
            assert chat.usage is not None and chat.usage.completion_tokens == 3
            again = client.chat.completions.retrieve(chat.id)
            assert again.choices[0].message.content == chat.choices[0].message.content
            # A prompt the model refuses (over the zoo's 8 KiB context, under the API's
            # 16 KiB limit) fails alone, with the short reason tenants read.
            with pytest.raises(BadRequestError) as refused:
                client.chat.completions.create(
                    model="messplus", messages=[{"role": "user", "content": "word " * 2000}]
                )
            error = refused.value.body
            assert isinstance(error, dict) and error["code"] == "model_rejected"
            assert ": rejected: " in error["message"] and "<" not in error["message"]
            text = client.completions.create(model="messplus", prompt=data.prompts[0], stop=["#"])
            assert text.model in data.models and text.choices[0].text.endswith("answer to ")
            # A batch of text completions, the other endpoint a batch may name.
            text_lines = [
                {
                    "custom_id": f"t{i}",
                    "method": "POST",
                    "url": "/v1/completions",
                    "body": {"model": "messplus", "prompt": prompt, "max_tokens": 2},
                }
                for i, prompt in enumerate(data.prompts[200:203])
            ]
            text_file = client.files.create(
                file=("text.jsonl", "".join(json.dumps(t) + "\n" for t in text_lines).encode()),
                purpose="batch",
            )
            text_batch = client.batches.create(
                input_file_id=text_file.id, endpoint="/v1/completions", completion_window="24h"
            )
            text_batch = _until_finished(client, text_batch, workers)
            assert text_batch.status == "completed" and text_batch.output_file_id
            text_output = client.files.content(text_batch.output_file_id).text.splitlines()
            for i, line in enumerate(json.loads(t) for t in text_output):
                body = line["response"]["body"]
                assert line["custom_id"] == f"t{i}" and body["object"] == "text_completion"
                assert body["choices"][0]["finish_reason"] == "length"
                assert len(body["choices"][0]["text"].split()) == body["usage"]["completion_tokens"]
            client.post(
                "/feedback",
                body={"response_id": chat.id, "satisfied": True},
                cast_to=dict,
            )

            # Every answer was rated, the chat answer too: wait until the workers stored them;
            # then q0's user changes their mind (rated not satisfied, now satisfied).
            rated = N_LINES + 1
            satisfied = sum(1 for i in range(N_LINES) if i % 4 != 0) + 1
            _wait_for_tally(sessions, tenant_id, (rated, satisfied), workers)
            first = lines[0]["response"]["body"]["id"]
            client.post("/feedback", body={"response_id": first, "satisfied": True}, cast_to=dict)
            satisfied += 1
            _wait_for_tally(sessions, tenant_id, (rated, satisfied), workers)

            # A call not answered within MESSPLUS_API_WAIT_S gets 504 with its answer's id;
            # the answer is stored when it comes and read back by that id.
            impatient = {**workers.environment, "MESSPLUS_API_WAIT_S": "0.001"}
            with api_server(impatient, log, free_port()) as (hasty_url, _):
                hasty = OpenAI(base_url=f"{hasty_url}/v1", api_key=key, max_retries=0)
                with pytest.raises(APIStatusError) as timed_out:
                    hasty.chat.completions.create(
                        model="messplus", messages=[{"role": "user", "content": data.prompts[9]}]
                    )
            assert timed_out.value.status_code == 504
            late_id = timed_out.value.body["id"]  # type: ignore[index]
            deadline = time.monotonic() + 60
            while True:
                try:
                    late = client.chat.completions.retrieve(late_id)
                    break
                except ConflictError:  # 409 not_ready: not answered yet
                    assert time.monotonic() < deadline, workers.logs()
                    time.sleep(0.2)
            assert late.id == late_id and late.model in data.models

            # Cancelling: requests already routed finish, queued ones are never served. The
            # router is stopped and the batch's first 5 requests routed here, so the split
            # between the two is known.
            workers.kill("route")
            cancel_file = client.files.create(
                file=("more.jsonl", _lines(list(data.prompts[100:130]))), purpose="batch"
            )
            doomed = client.batches.create(
                input_file_id=cancel_file.id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
            )
            _route_first(sessions, doomed.id, 5)
            cancelling = client.batches.cancel(doomed.id)
            assert cancelling.status in ("cancelling", "cancelled")
            deadline = time.monotonic() + 60
            while cancelling.status != "cancelled":
                assert time.monotonic() < deadline, workers.logs()
                time.sleep(0.2)
                cancelling = client.batches.retrieve(doomed.id)
            assert cancelling.request_counts is not None
            assert (cancelling.request_counts.completed, cancelling.request_counts.failed) == (
                5,
                25,
            )
            assert cancelling.error_file_id is not None
            errors = client.files.content(cancelling.error_file_id).text.splitlines()
            assert [json.loads(e)["custom_id"] for e in errors] == [f"q{i}" for i in range(5, 30)]
            assert {json.loads(e)["error"]["code"] for e in errors} == {"batch_cancelled"}
        # The API counted its requests into the workers' metrics directory: the exporter
        # serves them beside the workers' figures.
        from prometheus_client import generate_latest

        from workers.metrics import exporter_registry

        scraped = generate_latest(exporter_registry(sessions, metrics_dir, 1000)).decode()
        assert _sample(scraped, "messplus_api_requests_total", "/v1/batches", "POST", "200") == 3
        assert _sample(scraped, "messplus_api_requests_total", "/v1/feedback", "POST", "200") == (
            N_LINES + 2
        )
        chats = "/v1/chat/completions"
        assert _sample(scraped, "messplus_api_requests_total", chats, "POST", "504") == 1
        assert _sample(scraped, "messplus_api_requests_total", chats, "POST", "400") == 1
        assert _sample(scraped, "messplus_api_request_seconds_count", chats, "POST") == 3
        runtime.close()
        capsys.readouterr()
        assert main(["sla", "--tenant", TENANT, "--json"]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert (report["since_start"]["rated"], report["since_start"]["satisfied"]) == (
        rated,
        satisfied,
    )


def _until_finished(client: Any, batch: Any, workers: Any) -> Any:
    """The batch, retrieved until it is completed, failed or cancelled."""
    deadline = time.monotonic() + 180
    while batch.status not in ("completed", "failed", "cancelled"):
        assert time.monotonic() < deadline, f"{batch}\n{workers.logs()}"
        time.sleep(0.2)
        batch = client.batches.retrieve(batch.id)
    return batch


def _wait_for_tally(sessions: Any, tenant_id: int, expected: tuple[int, int], workers: Any) -> None:
    """Until the tenant's SLA state counts `expected` (rated, satisfied) answers."""
    from db.models import SlaState

    deadline = time.monotonic() + 60
    while True:
        with sessions.begin() as session:
            state = session.get(SlaState, tenant_id)
            if state is not None and (state.rated_count, state.satisfied_count) == expected:
                return
        assert time.monotonic() < deadline, f"{state}\n{workers.logs()}"
        time.sleep(0.2)


def _route_first(sessions: Any, batch_id: str, n: int) -> None:
    """Route the batch's first n requests as the router task does, in this process."""
    from sqlalchemy import select

    from db.models import Request
    from workers.messages import RouteChunk
    from workers.tasks import route

    with sessions.begin() as session:
        ids = session.scalars(
            select(Request.id)
            .where(Request.job_id == batch_id.removeprefix("batch_"))
            .order_by(Request.seq)
            .limit(n)
        ).all()
    route(RouteChunk(tuple(ids)).to_json())


def _sample(scraped: str, name: str, route: str, method: str, status: str | None = None) -> float:
    """The value of one series of the exporter's text output."""
    labels = f'method="{method}",route="{route}"'  # the exporter sorts labels by name
    if status is not None:
        labels += f',status="{status}"'
    prefix = f"{name}{{{labels}}} "
    line = next((line for line in scraped.splitlines() if line.startswith(prefix)), None)
    assert line is not None, f"no {prefix!r} in:\n" + "\n".join(
        line for line in scraped.splitlines() if "api" in line
    )
    return float(line.removeprefix(prefix))
