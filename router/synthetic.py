"""A synthetic model zoo whose true satisfaction probabilities are known.

Tests need ground truth (is the predictor calibrated? does routing read the prompt?) and the
local Triton zoo needs a default that ships with the project. Prompts are built from
topic words; each topic has a difficulty, each model a skill, and
P(model m satisfies prompt) = sigmoid(skill_m - difficulty_topic). Costs grow with model size
and prompt length, so cheaper models are worse on average but not on every topic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from router.dataset import ZooData

__all__ = ["SyntheticZoo", "synthetic_traffic", "synthetic_zoo"]

_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "pa", "do", "fi", "gu", "he")
DEFAULT_MODELS = ("tiny-1b", "small-8b", "large-70b")
DEFAULT_SKILLS = (-0.2, 0.9, 1.6)
DEFAULT_COST_J = (60.0, 300.0, 1500.0)


@dataclass(frozen=True)
class SyntheticZoo:
    """The zoo's observable outcomes plus the probabilities they were drawn from."""

    data: ZooData
    probability: npt.NDArray[np.float64]
    topic: npt.NDArray[np.int64]


def _word(rng: np.random.Generator) -> str:
    return "".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 4))))


def _prompts(
    rng: np.random.Generator,
    vocab: list[list[str]],
    filler: list[str],
    topic: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
) -> list[str]:
    """One prompt per (topic, length): a third of its words from the topic's vocabulary,
    the rest filler shared by all topics, shuffled."""
    prompts = []
    for t, length in zip(topic, lengths, strict=True):
        n_topic_words = max(2, int(length) // 3)
        words = list(rng.choice(vocab[t], size=n_topic_words)) + list(
            rng.choice(filler, size=int(length) - n_topic_words)
        )
        rng.shuffle(words)
        prompts.append(" ".join(words) + "?")
    return prompts


def synthetic_zoo(
    n_requests: int,
    seed: int = 0,
    *,
    n_topics: int = 12,
    models: tuple[str, ...] = DEFAULT_MODELS,
    skills: tuple[float, ...] = DEFAULT_SKILLS,
    cost_j: tuple[float, ...] = DEFAULT_COST_J,
) -> SyntheticZoo:
    """Draw a zoo of len(models) models on n_requests prompts, reproducibly from seed."""
    if not len(models) == len(skills) == len(cost_j):
        raise ValueError("models, skills and cost_j must have the same length")
    rng = np.random.default_rng(seed)
    vocab = [[_word(rng) for _ in range(8)] for _ in range(n_topics)]
    filler = [_word(rng) for _ in range(40)]
    difficulty = rng.normal(0.0, 1.5, size=n_topics)
    topic = rng.integers(0, n_topics, size=n_requests)
    lengths = rng.integers(6, 30, size=n_requests)
    prompts = _prompts(rng, vocab, filler, topic, lengths)
    logits = np.asarray(skills)[None, :] - difficulty[topic][:, None]
    probability = 1.0 / (1.0 + np.exp(-logits))
    satisfied = (rng.random(probability.shape) < probability).astype(np.int8)
    scale = (0.7 + lengths / 60.0)[:, None]
    cost = np.asarray(cost_j)[None, :] * scale * rng.lognormal(0.0, 0.05, size=probability.shape)
    latency_s = cost / np.asarray(cost_j)[None, :] * np.linspace(0.3, 3.0, len(models))[None, :]
    data = ZooData(
        name=f"synthetic-{seed}",
        models=tuple(models),
        prompts=tuple(prompts),
        satisfied=satisfied,
        cost=cost,
        latency_s=latency_s,
        groups=tuple(f"topic-{t}" for t in topic),
    )
    return SyntheticZoo(data=data, probability=probability, topic=topic)


def synthetic_traffic(
    n_requests: int,
    seed: int = 0,
    *,
    n_kinds: int = 8,
    models: tuple[str, ...] = ("small", "large"),
    usd_per_request: tuple[float, ...] = (1e-5, 1e-4),
    usd_per_token: tuple[float, ...] = (2e-7, 3e-6),
) -> SyntheticZoo:
    """A provider's mixed traffic with known structure, priced in dollars per token.

    Unlike synthetic_zoo, where one difficulty per topic orders every model alike, each kind
    of request here has its own accuracy per model: the most capable model satisfies 70-95%,
    and each cheaper model falls short of the next by a gap per kind, spread evenly from 0
    to 0.45 over the kinds in a random order, so for some kinds the cheapest model is as
    good as the best and for others far worse.
    Kinds differ in prompt length (8 to 400 words) and in answer length, and a request
    costs usd_per_request + usd_per_token * (prompt + answer tokens) on each model, so the
    same model is dear on long kinds and cheap on short ones. One latent draw per request
    decides all models (a request the cheap model satisfies, the better ones satisfy too,
    mostly), as on real benchmarks. `groups` names each request's kind; a router must not
    read it, references may.
    """
    n_models = len(models)
    if not n_models == len(usd_per_request) == len(usd_per_token):
        raise ValueError("models, usd_per_request and usd_per_token must have the same length")
    rng = np.random.default_rng(seed)
    vocab = [[_word(rng) for _ in range(8)] for _ in range(n_kinds)]
    filler = [_word(rng) for _ in range(40)]
    accuracy = np.empty((n_kinds, n_models))
    accuracy[:, -1] = rng.uniform(0.70, 0.95, size=n_kinds)
    for m in range(n_models - 2, -1, -1):
        gaps = rng.permutation(np.linspace(0.0, 0.45, n_kinds))
        accuracy[:, m] = np.clip(accuracy[:, m + 1] - gaps, 0.05, 1.0)
    mean_words = np.exp(rng.uniform(np.log(8), np.log(400), size=n_kinds))
    answer_tokens = np.exp(rng.uniform(np.log(2), np.log(200), size=n_kinds))
    kind = rng.integers(0, n_kinds, size=n_requests)
    lengths = np.maximum(3, rng.poisson(mean_words[kind]))
    prompts = _prompts(rng, vocab, filler, kind, lengths)
    probability = accuracy[kind]
    latent = rng.random(n_requests)[:, None]
    satisfied = (latent < probability).astype(np.int8)
    tokens = 1.3 * lengths[:, None] + answer_tokens[kind][:, None]
    tokens = tokens * rng.lognormal(0.0, 0.1, size=(n_requests, n_models))
    cost = np.asarray(usd_per_request)[None, :] + np.asarray(usd_per_token)[None, :] * tokens
    latency_s = tokens * np.linspace(0.01, 0.05, n_models)[None, :]
    data = ZooData(
        name=f"traffic-{seed}",
        models=tuple(models),
        prompts=tuple(prompts),
        satisfied=satisfied,
        cost=cost,
        latency_s=latency_s,
        cost_unit="USD",
        groups=tuple(f"kind-{k}" for k in kind),
    )
    return SyntheticZoo(data=data, probability=probability, topic=kind)
