"""Kinds of request found online: clusters of the words and shape of prompts."""

from __future__ import annotations

import numpy as np

from router.clusters import PromptClusters
from router.features import request_words
from router.synthetic import synthetic_traffic


def _purity(clusters: np.ndarray, kinds: np.ndarray) -> float:
    """Share of requests whose cluster's most common kind is their own."""
    agree = sum(np.bincount(kinds[clusters == c]).max() for c in np.unique(clusters))
    return float(agree / len(kinds))


def test_clusters_learned_online_recover_the_kinds_of_traffic() -> None:
    traffic = synthetic_traffic(4000, seed=5)
    words = request_words(traffic.data.prompts)
    clusters = PromptClusters()
    clusters.learn(words[:3000])
    assigned = clusters.assign(words[3000:])
    assert _purity(assigned, traffic.topic[3000:]) > 0.9
    # Every cluster was seeded and the unit centroids stay unit.
    assert np.all(clusters.sizes > 0)
    np.testing.assert_allclose(np.linalg.norm(clusters.centroids, axis=1), 1.0)


def test_a_request_is_counted_in_its_nearest_cluster_once_all_are_seeded() -> None:
    traffic = synthetic_traffic(600, seed=6)
    words = request_words(traffic.data.prompts)
    clusters = PromptClusters(n_clusters=8)
    clusters.learn(words[:100])
    for row in words[100:150]:
        nearest = clusters.assign(row[None])[0]
        assert clusters.learn(row[None])[0] == nearest


def test_a_repeated_prompt_seeds_one_cluster_only() -> None:
    clusters = PromptClusters(n_clusters=4)
    counted = clusters.learn(request_words(["is it a true story"] * 5 + ["which is larger?"]))
    assert list(counted) == [0, 0, 0, 0, 0, 1]
    assert list(clusters.sizes) == [5, 1, 0, 0]
