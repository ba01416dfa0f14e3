"""Kinds of request, found online: spherical k-means on the words and shape of prompts.

UniRoute (Jitkrittum et al., ICLR 2026) describes a request by the cluster its prompt falls
in and each model by what it does per cluster. Its clusters are fitted offline; here they
are learned online by MacQueen's sequential k-means, so that replay, a live router between
nightly runs and the nightly run itself (which passes the whole history through the same
steps) share one implementation: the first `n_clusters` distinct requests seed the
centroids, and each later one moves its nearest centroid towards itself by 1 / (the
cluster's size). A cluster's centroid is kept at unit length, and a request is a unit
vector over its hashed tokens (router.features.request_words), so nearest means largest
cosine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from router.features import WORD_BUCKETS

__all__ = ["PromptClusters"]


@dataclass
class PromptClusters:
    """n_clusters centroids over WORD_BUCKETS hashed tokens, and each cluster's size."""

    n_clusters: int = 32
    centroids: npt.NDArray[np.float64] = field(init=False)
    sizes: npt.NDArray[np.float64] = field(init=False)

    STATE = ("centroids", "sizes")

    def __post_init__(self) -> None:
        if self.n_clusters < 1:
            raise ValueError("n_clusters must be >= 1")
        self.centroids = np.zeros((self.n_clusters, WORD_BUCKETS))
        self.sizes = np.zeros(self.n_clusters)

    def assign(self, words: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The nearest cluster of every request (rows of request_words).

        A request's tokens weigh alike, so its nearest centroid is the one whose entries
        over them sum highest: one gather of the requests' tokens and one running sum."""
        if len(words) == 1:
            # One request, as a router deciding one by one sees it: np.add.reduce is what
            # .sum() calls, without its Python wrapper, over rows gathered by .take (a
            # third of what fancy indexing costs on them).
            tokens = words[0][words[0] >= 0]
            gathered = self.centroids.T.take(tokens, axis=0)
            return np.add.reduce(gathered, axis=0).argmax(keepdims=True)
        nearest = np.empty(len(words), dtype=np.int64)
        # In blocks, so that the gathered entries stay in cache however many rows come;
        # cluster-major, so that each cluster's running sum is one contiguous pass.
        for start in range(0, len(words), 512):
            block = words[start : start + 512]
            present = block >= 0
            ends = np.cumsum(present.sum(axis=1))
            running = np.empty((self.n_clusters, ends[-1] + 1))
            running[:, 0] = 0.0
            # Tokens are buckets, always in range: "clip" writes in place where the default
            # mode would buffer the gathered block first.
            np.take(self.centroids, block[present], axis=1, out=running[:, 1:], mode="clip")
            np.cumsum(running[:, 1:], axis=1, out=running[:, 1:])
            scores = running[:, ends] - running[:, np.concatenate(([0], ends[:-1]))]
            nearest[start : start + 512] = scores.argmax(axis=0)
        return nearest

    def learn(self, words: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Move each request's nearest centroid towards it, in order; returns the clusters
        the requests were counted in (an empty cluster takes the request as its seed).

        A centroid's step, (1 - 1/n) c + v / n renormalised, touches only the request's
        tokens when the centroid is kept as scale * raw: a nightly fit takes a million of
        these steps, and rescaling all of a centroid each time would dominate it."""
        # Token-major, so that a request's tokens are a few contiguous rows.
        raw = np.ascontiguousarray(self.centroids.T)
        scale = np.ones(self.n_clusters)
        clusters = np.empty(len(words), dtype=np.int64)
        seeding = bool(np.any(self.sizes == 0))
        for r in range(len(words)):
            tokens = words[r][words[r] >= 0]
            value = 1.0 / np.sqrt(max(len(tokens), 1))
            # Cosine with every (unit) centroid: value times the sum over the tokens.
            cosine = scale * raw[tokens].sum(axis=0) * value
            k = int(np.argmax(cosine))
            if seeding and cosine[k] < 1.0 - 1e-9:
                # Not a repeat of a seed: it seeds the next empty cluster.
                k = int(np.argmin(self.sizes))
                seeding = int(np.count_nonzero(self.sizes == 0)) > 1
            self.sizes[k] += 1.0
            keep, step = 1.0 - 1.0 / self.sizes[k], 1.0 / self.sizes[k]
            # |keep c + step v|, with |c| = |v| = 1 (an empty centroid has c = 0).
            norm = np.sqrt(max(keep * keep + 2.0 * keep * step * cosine[k] + step * step, 0.0))
            if keep == 0.0:
                raw[:, k] = 0.0
                raw[tokens, k] = value
                scale[k] = 1.0
            else:
                raw[tokens, k] += step * value / (scale[k] * keep)
                scale[k] *= keep / norm
            clusters[r] = k
        self.centroids = scale[:, None] * raw.T
        return clusters
