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

__all__ = ["SyntheticZoo", "synthetic_zoo"]

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
    prompts = []
    lengths = rng.integers(6, 30, size=n_requests)
    for t, length in zip(topic, lengths, strict=True):
        n_topic_words = max(2, int(length) // 3)
        words = list(rng.choice(vocab[t], size=n_topic_words)) + list(
            rng.choice(filler, size=int(length) - n_topic_words)
        )
        rng.shuffle(words)
        prompts.append(" ".join(words) + "?")
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
