"""The Triton transport against a real Triton Inference Server (PyTriton zoo, CPU): no fakes."""

from __future__ import annotations

import csv
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from router.dataset import ZooData
from workers.errors import InferenceRejected, InferenceUnavailable
from workers.triton_client import Sampling, connect, serving_problems, wait_until_ready
from workers.zoo_server import ZooError, ZooProcess, start_zoo_process

pytestmark = pytest.mark.services

ARC_CSV = Path("/work/shared/data/llama3-zoo/arc_challenge.csv")


def _stats(zoo: ZooProcess, model: str) -> tuple[int, int]:
    """(inferences, executions) Triton counted for `model`: proves how requests were batched."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(zoo.grpc_url.removeprefix("grpc://"))
    try:
        stats: dict[str, Any] = client.get_inference_statistics(model, as_json=True)
    finally:
        client.close()
    model_stats = stats["model_stats"][0]
    return int(model_stats.get("inference_count", 0)), int(model_stats.get("execution_count", 0))


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_synthetic_round_trip(zoo: ZooProcess, synthetic_data: ZooData, protocol: str) -> None:
    url = zoo.grpc_url if protocol == "grpc" else zoo.http_url
    rows = [0, 7, 1999]
    prompts = [synthetic_data.prompts[row] for row in rows]
    assert zoo.models == synthetic_data.models
    with connect(url, client_timeout_s=10) as client:
        for index, model in enumerate(zoo.models):
            completions = client.generate(model, prompts, max_tokens=64)
            assert [c.text for c in completions] == [f"[{model}] answer to #{r}" for r in rows]
            assert [c.would_satisfy for c in completions] == [
                bool(synthetic_data.satisfied[r, index]) for r in rows
            ]
            assert [c.cost for c in completions] == pytest.approx(
                [synthetic_data.cost[r, index] for r in rows]
            )
            assert all(c.tokens == 4 and c.latency_s > 0 for c in completions)


def test_batch_of_256_is_one_request_and_one_execution(
    zoo: ZooProcess, synthetic_data: ZooData
) -> None:
    model = zoo.models[1]
    prompts = list(synthetic_data.prompts[:256])
    before = _stats(zoo, model)
    with connect(zoo.grpc_url) as client:
        completions = client.generate(model, prompts, max_tokens=64)
    after = _stats(zoo, model)
    assert [c.text for c in completions] == [f"[{model}] answer to #{i}" for i in range(256)]
    assert len({c.latency_s for c in completions}) == 1  # one request carried them all
    assert (after[0] - before[0], after[1] - before[1]) == (256, 1)


def test_client_splits_chunks_larger_than_max_batch(
    zoo: ZooProcess, synthetic_data: ZooData
) -> None:
    model = zoo.models[2]
    prompts = list(synthetic_data.prompts[:250])
    before = _stats(zoo, model)
    with connect(zoo.grpc_url, max_batch=100) as client:
        completions = client.generate(model, prompts, max_tokens=64)
    after = _stats(zoo, model)
    assert [c.text for c in completions] == [f"[{model}] answer to #{i}" for i in range(250)]
    assert (after[0] - before[0], after[1] - before[1]) == (250, 3)


def test_max_tokens_truncates_and_counts(zoo: ZooProcess, synthetic_data: ZooData) -> None:
    model = zoo.models[0]
    with connect(zoo.grpc_url) as client:
        (completion,) = client.generate(model, [synthetic_data.prompts[3]], max_tokens=2)
    assert (completion.text, completion.tokens) == (f"[{model}] answer", 2)


def test_unknown_prompt_gets_a_flagged_deterministic_fallback(zoo: ZooProcess) -> None:
    prompt = "a prompt that is not in the synthetic zoo"
    with connect(zoo.grpc_url) as grpc_client, connect(zoo.http_url) as http_client:
        first = grpc_client.generate(zoo.models[0], [prompt], max_tokens=64)
        again = http_client.generate(zoo.models[0], [prompt], max_tokens=64)
    assert "fallback" in first[0].text and "not in synthetic-0" in first[0].text
    assert (first[0].text, first[0].cost, first[0].would_satisfy) == (
        again[0].text,
        again[0].cost,
        again[0].would_satisfy,
    )


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_vllm_inputs_give_only_the_completion_a_finish_reason_and_counts(
    zoo: ZooProcess, synthetic_data: ZooData, protocol: str
) -> None:
    """The zoo declares the vLLM backend's optional inputs, and the client sends them:
    the answer alone (exclude_input_in_output), the server's finish reason and counts."""
    url = zoo.grpc_url if protocol == "grpc" else zoo.http_url
    model, prompt = zoo.models[0], synthetic_data.prompts[5]
    with connect(url) as client:
        full, cut, stopped = client.generate(
            model,
            [prompt] * 3,
            max_tokens=64,
            sampling=[Sampling(), Sampling(max_tokens=2), Sampling(temperature=0.7, stop=("#",))],
        )
    assert (full.text, full.finish_reason, full.tokens) == (f"[{model}] answer to #5", "stop", 4)
    assert full.prompt_tokens == len(prompt.split())
    assert (cut.text, cut.finish_reason, cut.tokens) == (f"[{model}] answer", "length", 2)
    assert (stopped.text, stopped.finish_reason) == (f"[{model}] answer to ", "stop")


def test_without_exclude_input_the_zoo_echoes_the_prompt_as_vllm_does(
    zoo: ZooProcess, synthetic_data: ZooData
) -> None:
    """Why the client sends exclude_input_in_output: the raw call gets prompt + answer."""
    import numpy as np
    import tritonclient.grpc as grpcclient

    model, prompt = zoo.models[0], synthetic_data.prompts[5]
    client = grpcclient.InferenceServerClient(zoo.grpc_url.removeprefix("grpc://"))
    try:
        text_input = grpcclient.InferInput("text_input", [1, 1], "BYTES")
        text_input.set_data_from_numpy(np.array([[prompt.encode()]], dtype=np.object_))
        result = client.infer(model, [text_input])
    finally:
        client.close()
    assert result.as_numpy("text_output")[0, 0].decode() == f"{prompt}[{model}] answer to #5"


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_unknown_model_is_rejected(zoo: ZooProcess, protocol: str) -> None:
    url = zoo.grpc_url if protocol == "grpc" else zoo.http_url
    with connect(url) as client, pytest.raises(InferenceRejected, match="no-such-model"):
        client.generate("no-such-model", ["hello"], max_tokens=8)


def test_wait_until_ready_sees_every_model(zoo: ZooProcess) -> None:
    wait_until_ready(zoo.http_url, zoo.models, timeout_s=5)
    with pytest.raises(InferenceUnavailable, match="no-such-model"):
        wait_until_ready(zoo.grpc_url, [*zoo.models, "no-such-model"], timeout_s=0.5)


@pytest.mark.skipif(not ARC_CSV.is_file(), reason=f"shared replay data absent: {ARC_CSV}")
def test_replay_answers_with_label_and_energy_from_the_csv() -> None:
    with ARC_CSV.open(newline="", encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    with start_zoo_process(ARC_CSV) as zoo, connect(zoo.grpc_url) as client:
        for model in zoo.models:
            (completion,) = client.generate(model, [row["input_text"]], max_tokens=64)
            assert completion.text == f"[{model}] answer to #0"
            assert completion.would_satisfy is (row[f"label_{model}"] == "1")
            assert completion.cost == pytest.approx(float(row[f"energy_consumption_{model}"]))


def test_stopped_server_is_unavailable_fast_and_leaves_nothing(
    tmp_path: Path, leftovers: Callable[[ZooProcess], list[str]]
) -> None:
    data = tmp_path / "tiny.csv"
    data.write_text(
        "doc_id,input_text,benchmark_name,label_m,energy_consumption_m,inference_time_m\n"
        "0,what is two plus two?,tiny,1,12.5,0.1\n",
        encoding="utf-8",
    )
    zoo = start_zoo_process(data)
    with connect(zoo.grpc_url) as client:
        (completion,) = client.generate("m", ["what is two plus two?"], max_tokens=8)
    assert (completion.would_satisfy, completion.cost) == (True, 12.5)
    zoo.stop()
    assert leftovers(zoo) == []
    for url in (zoo.grpc_url, zoo.http_url):
        with connect(url, client_timeout_s=30) as client:
            started = time.monotonic()
            with pytest.raises(InferenceUnavailable):
                client.generate("m", ["what is two plus two?"], max_tokens=8)
            assert time.monotonic() - started < 2.0


def test_busy_port_fails_fast_with_the_reason() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(ZooError, match=f"gRPC port 127.0.0.1:{port} is not available"):
            start_zoo_process(None, grpc_port=port)
    assert time.monotonic() - started < 15


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_serving_problems_names_models_triton_does_not_serve(
    zoo: ZooProcess, protocol: str
) -> None:
    url = zoo.grpc_url if protocol == "grpc" else zoo.http_url
    assert serving_problems(url, list(zoo.models)) == []
    problems = serving_problems(url, [zoo.models[0], "llama-3.1-8b"])
    served = ", ".join(sorted(zoo.models))
    assert problems == [f"llama-3.1-8b is not served by Triton at {url} (it serves {served})"]


def test_serving_problems_of_an_unreachable_triton_is_one_line() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (problem,) = serving_problems(f"grpc://127.0.0.1:{port}", ["tiny-1b"], timeout_s=2.0)
    assert problem.startswith(f"Triton at grpc://127.0.0.1:{port} is not reachable or not ready")
    assert "\n" not in problem
    (problem,) = serving_problems(f"http://ops:Zk9-secret@127.0.0.1:{port}", ["tiny-1b"], 2.0)
    assert f"Triton at http://ops:***@127.0.0.1:{port} is not" in problem
    assert "Zk9-secret" not in problem


def test_a_decoupled_model_answers_over_a_grpc_stream(synthetic_data: ZooData) -> None:
    """The vLLM backend is always decoupled: the client streams each prompt as a request of
    its own, all in flight at once, and reads each answer before its empty final response.
    HTTP has no streams, so it is refused with the reason."""
    with start_zoo_process(None, decoupled=True) as zoo:
        model, rows = zoo.models[2], [3, 5, 8]
        with connect(zoo.grpc_url) as client:
            completions = client.generate(
                model,
                [synthetic_data.prompts[r] for r in rows],
                max_tokens=64,
                sampling=[Sampling(), Sampling(max_tokens=2), Sampling(stop=("#",))],
            )
        assert [c.text for c in completions] == [
            f"[{model}] answer to #3",
            f"[{model}] answer",
            f"[{model}] answer to ",
        ]
        assert [c.finish_reason for c in completions] == ["stop", "length", "stop"]
        assert [c.tokens for c in completions] == [4, 2, 3]
        with connect(zoo.http_url) as client, pytest.raises(InferenceRejected, match="grpc://"):
            client.generate(model, [synthetic_data.prompts[3]], max_tokens=8)
        # Workers and `zoo register` ask the same before they accept a Triton URL.
        assert serving_problems(zoo.grpc_url, [model]) == []
        (problem,) = serving_problems(zoo.http_url, [model])
        assert "decoupled" in problem and "grpc://" in problem
