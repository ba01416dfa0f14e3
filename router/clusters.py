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

# Requests scored per block in `assign`.
_BLOCK = 64


@dataclass
class PromptClusters:
    """n_clusters centroids over WORD_BUCKETS hashed tokens, and each cluster's size."""

    n_clusters: int = 32
    centroids: npt.NDArray[np.float64] = field(init=False)
    sizes: npt.NDArray[np.float64] = field(init=False)
    # The centroids token-major, built for the centroids array it holds (see assign).
    _table: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] = field(
        init=False, repr=False, compare=False, default=(np.zeros(0), np.zeros(0))
    )

    STATE = ("centroids", "sizes")

    def __post_init__(self) -> None:
        if self.n_clusters < 1:
            raise ValueError("n_clusters must be >= 1")
        self.centroids = np.zeros((self.n_clusters, WORD_BUCKETS))
        self.sizes = np.zeros(self.n_clusters)

    def assign(self, words: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The nearest cluster of every request (rows of request_words).

        A request's tokens weigh alike, so its nearest centroid is the one whose entries
        over them sum highest: the sum of the request's rows of the token-major table."""
        table = self._token_major()
        if len(words) == 1:
            # One request, as a router deciding one by one sees it: np.add.reduce is what
            # .sum() calls, without its Python wrapper, over rows gathered by .take (a
            # third of what fancy indexing costs on them).
            tokens = words[0][words[0] >= 0]
            return np.add.reduce(table.take(tokens, axis=0), axis=0).argmax(keepdims=True)
        nearest = np.empty(len(words), dtype=np.int64)
        widths = np.count_nonzero(words >= 0, axis=1)
        # In blocks of rows cut to their longest request (rows are sorted tokens padded
        # with -1, the table's zero row): a request has a dozen tokens of the 48 a row
        # holds, and a block's gathered rows stay in cache.
        for start in range(0, len(words), _BLOCK):
            width = int(widths[start : start + _BLOCK].max(initial=0))
            gathered = table.take(words[start : start + _BLOCK, :width], axis=0)
            scores = np.add.reduce(gathered, axis=1)
            nearest[start : start + _BLOCK] = scores.argmax(axis=1)
        return nearest

    def _token_major(self) -> npt.NDArray[np.float64]:
        """(WORD_BUCKETS + 1, n_clusters) centroids by token, then a zero row that the
        padding, -1, reads; rebuilt when the centroids are (learn, or a loaded state)."""
        if self._table[0] is not self.centroids:
            table = np.zeros((WORD_BUCKETS + 1, self.n_clusters))
            table[:-1] = self.centroids.T
            self._table = (self.centroids, table)
        return self._table[1]

    def learn(self, words: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Move each request's nearest centroid towards it, in order; returns the clusters
        the requests were counted in (an empty cluster takes the request as its seed).

        A centroid's step, (1 - 1/n) c + v / n renormalised, touches only the request's
        tokens when the centroid is kept as scale * raw: a nightly fit takes a million of
        these steps, and rescaling all of a centroid each time would dominate it."""
        # Token-major, so that a request's tokens are a few contiguous rows: the rows of
        # assign's table, updated in place (copying the centroids in and out of it cost
        # 0.2 ms a call, most of a router's learning from one answer).
        table = self._token_major()
        raw = table[:-1]
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
        raw *= scale
        self.centroids = raw.T
        self._table = (self.centroids, table)
        return clusters
