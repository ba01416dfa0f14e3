"""The tensor contract a Triton model must speak for model workers: text_input BYTES ->
text_output BYTES, nothing else required, decoupled only over gRPC (streams).
Configurations as Triton reports them."""

from __future__ import annotations

from typing import Any

import pytest

from workers.triton_client import contract_problem


def _tensor(name: str, kind: str = "TYPE_STRING", *, optional: bool = False) -> dict[str, Any]:
    return {"name": name, "data_type": kind, "dims": [1], "optional": optional}


ZOO = {
    "max_batch_size": 256,
    "input": [_tensor("text_input"), _tensor("max_tokens", "TYPE_INT32", optional=True)],
    "output": [_tensor("text_output"), _tensor("cost", "TYPE_FP64")],
}
VLLM = {
    "max_batch_size": 0,
    "input": [
        _tensor("text_input"),
        _tensor("stream", "TYPE_BOOL", optional=True),
        _tensor("sampling_parameters", optional=True),
        _tensor("exclude_input_in_output", "TYPE_BOOL", optional=True),
    ],
    "output": [_tensor("text_output")],
}


@pytest.mark.parametrize("config", [ZOO, VLLM], ids=["zoo", "vllm"])
def test_the_zoo_and_a_unary_vllm_model_speak_the_contract(config: dict[str, Any]) -> None:
    assert contract_problem("m", config) is None


def test_a_decoupled_model_speaks_it_over_streams_only() -> None:
    """The vLLM backend is always decoupled: gRPC reaches it on a stream, HTTP cannot."""
    config = VLLM | {"model_transaction_policy": {"decoupled": True}}
    assert contract_problem("m", config, streams=True) is None
    problem = contract_problem("m", config, streams=False)
    assert problem is not None and "decoupled" in problem and "grpc://" in problem


@pytest.mark.parametrize(
    ("config", "says"),
    [
        (
            {"input": [_tensor("INPUT_0")], "output": [_tensor("OUTPUT_0")]},
            "does not speak text_input -> text_output (inputs ['INPUT_0'], outputs ['OUTPUT_0'])",
        ),
        (
            ZOO | {"input": [_tensor("text_input", "TYPE_FP32")]},
            "text_input is TYPE_FP32, not TYPE_STRING (BYTES)",
        ),
        (
            ZOO | {"output": [_tensor("text_output", "TYPE_INT32")]},
            "text_output is TYPE_INT32, not TYPE_STRING (BYTES)",
        ),
        (
            ZOO | {"input": [_tensor("text_input"), _tensor("temperature", "TYPE_FP32")]},
            "requires input(s) temperature that messplus does not send",
        ),
    ],
)
def test_another_contract_is_named(config: dict[str, Any], says: str) -> None:
    problem = contract_problem("m", config)
    assert problem is not None and says in problem
