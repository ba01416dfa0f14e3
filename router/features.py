"""Prompt featurisation without a downloaded model: hashed character n-grams, plus the
hashed words and shape of each request (what kind of request it is, see `request_words`).

Character 3- to 5-grams of the lower-cased UTF-8 bytes catch words, stems and punctuation in
any language and need no vocabulary. They are hashed with a polynomial rolling hash computed
by numpy over a whole batch at once, so featurising is a handful of vector operations rather
than a Python loop over n-grams, and the hash is stable across processes (unlike `hash()`),
which a serialised predictor needs. A learned embedding can replace this by implementing
`Featuriser`.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["WORD_BUCKETS", "Featuriser", "HashedNgrams", "SparseBatch", "request_words"]

# Hashed words and shape tokens fall into this many buckets; a request keeps at most
# _MAX_WORDS of its first words.
WORD_BUCKETS = 4096
_MAX_WORDS = 45
# A row of request_words: the first words, then the first, the last word and the length.
_WIDTH = _MAX_WORDS + 3
# Joins a batch's prompts for one regex pass; a token of its own (a non-word character).
_SEPARATOR = "\x00"
_WORD = re.compile(r"\w+|[^\w\s]")
_HEAD_CHARS = 1024
_TAIL_CHARS = 64

_PRIME = 1099511628211
_MIX = 0x9E3779B97F4A7C15
_SHIFT = np.uint64(29)


@dataclass(frozen=True)
class SparseBatch:
    """Rows of a sparse matrix in CSR form: row r is indices/values[indptr[r]:indptr[r+1]].

    n_grams[r] is how many n-grams row r's prompt has, repeats counted: its length, which
    the values (normalised) no longer tell. words[r] are the distinct hashed words and
    shape tokens of row r's prompt (`request_words`), padded with -1.
    """

    indptr: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    n_features: int
    n_grams: npt.NDArray[np.int64]
    words: npt.NDArray[np.int64]

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def row(self, r: int) -> SparseBatch:
        start, stop = self.indptr[r], self.indptr[r + 1]
        return SparseBatch(
            indptr=np.array([0, stop - start], dtype=np.int64),
            indices=self.indices[start:stop],
            values=self.values[start:stop],
            n_features=self.n_features,
            n_grams=self.n_grams[r : r + 1],
            words=self.words[r : r + 1],
        )

    def rows(self, selection: npt.NDArray[np.int64]) -> SparseBatch:
        """The sub-batch of the given rows, in the given order."""
        starts, stops = self.indptr[selection], self.indptr[selection + 1]
        lengths = stops - starts
        indptr = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        take = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
        return SparseBatch(
            indptr,
            self.indices[take],
            self.values[take],
            self.n_features,
            self.n_grams[selection],
            self.words[selection],
        )

    def dot(
        self, weights: npt.NDArray[np.float64], folded: bool = False
    ) -> npt.NDArray[np.float64]:
        """Each row times `weights` (n_features,) or (n_features, k): (rows,) or (rows, k).

        folded: `weights` has fewer rows, a power of two, and feature f reads row f modulo
        their number (a cost model keeps the n-grams so, see router.costs)."""
        indices = self.indices & (len(weights) - 1) if folded else self.indices
        if self.n_rows == 1:
            # One prompt, as a router deciding one by one sees it: a single BLAS product,
            # of rows gathered by .take (a third of what fancy indexing costs on them).
            return (self.values @ weights.take(indices, axis=0))[None]
        # Column by column (each a gather from a table that stays in cache), each row's
        # products summed by np.add.reduceat: one C loop, where differences of a running
        # sum took three passes and lost the low bits of every row after a long one.
        columns = weights[None] if weights.ndim == 1 else np.ascontiguousarray(weights.T)
        sums = np.zeros((len(columns), self.n_rows))
        if len(indices):
            starts = self.indptr[:-1]
            # A trailing zero keeps an empty last row's start in range; an empty row's
            # "sum" (reduceat gives the entry at its start) is zeroed below.
            products = np.empty(len(indices) + 1)
            products[-1] = 0.0
            for column, out in zip(columns, sums, strict=True):
                np.take(column, indices, out=products[:-1])
                products[:-1] *= self.values
                np.add.reduceat(products, starts, out=out)
            sums[:, starts == self.indptr[1:]] = 0.0
        return sums[0] if weights.ndim == 1 else sums.T

    def row_dot(self, weights: npt.NDArray[np.float64]) -> float:
        """A one-row batch times `weights` (n_features,), as a Python float: the product
        `dot` gives it, without the arrays around it."""
        return float(self.values @ weights.take(self.indices))

    def rows_sorted_distinct(self) -> bool:
        """Whether every row's indices are increasing, so that each row is its own
        `merged()` (as every batch of HashedNgrams is): checked once for a batch rather
        than once per row by a learner that steps row by row."""
        increasing = self.indices[1:] > self.indices[:-1]
        starts = self.indptr[1:-1]
        # Where a row begins, the comparison is with the previous row's last index.
        increasing[starts[(starts > 0) & (starts < len(self.indices))] - 1] = True
        return bool(increasing.all())

    def merged(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """All entries' indices, each once, with their values summed: a learner updating
        weights by fancy indexing would otherwise apply only one of a repeated n-gram."""
        if (self.indices[1:] > self.indices[:-1]).all():
            # Already so (one row of HashedNgrams, whose indices are sorted and distinct):
            # a nightly fit takes this path for every rating.
            return self.indices, self.values
        indices, position = np.unique(self.indices, return_inverse=True)
        return indices, np.bincount(position, weights=self.values).astype(np.float64)


class Featuriser(Protocol):
    """Turns prompts into sparse feature rows; the predictor only sees this interface."""

    @property
    def n_features(self) -> int: ...

    def featurise(self, prompts: Sequence[str]) -> SparseBatch: ...


def _counted(
    keys: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The distinct values of sorted `keys` and how often each occurs."""
    # np.empty and two ends, not np.ones: its Python wrapper cost 0.6 us of one prompt.
    bounds = np.empty(len(keys) + 1, dtype=bool)
    bounds[0] = bounds[-1] = True
    np.not_equal(keys[1:], keys[:-1], out=bounds[1:-1])
    (starts,) = bounds.nonzero()
    return keys[starts[:-1]], starts[1:] - starts[:-1]


@dataclass(frozen=True)
class HashedNgrams:
    """Hashed character n-grams: one entry per distinct n-gram of a prompt, its count in the
    prompt, the row scaled to unit length (as scikit-learn's HashingVectorizer does): a
    prompt's dot products do not grow with its length or with how often its words repeat,
    so a learner's step moves every prompt's prediction alike (summing repeated n-grams as
    separate entries of weight 1/sqrt(n-grams) gave a long, repetitive prompt a squared
    length of 20 and more, and the text layer's steps on it as many logits)."""

    n_features: int = 1 << 16
    min_n: int = 3
    max_n: int = 5
    max_prompt_bytes: int = 4096

    def __post_init__(self) -> None:
        if self.n_features & (self.n_features - 1):
            raise ValueError("n_features must be a power of two")

    @cached_property
    def _hash_product(
        self,
    ) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64], np.uint64]:
        """The mixed rolling hash of every n-gram size as one integer matrix product, and
        the mask of its buckets (as a numpy scalar: built per call, it cost 0.5 us of one
        prompt's featurisation).

        The polynomial rolling hash of the n-gram at byte i, h_n = sum_k b[i + k] P^(n-1-k),
        mixed as (h_n + n) MIX, is (modulo 2^64, where uint64 arithmetic wraps) the max_n
        bytes from i times the column (P^(n-1-k) MIX)_k plus n MIX: one product of the
        bytes' windows with a (max_n, sizes) matrix hashes every size at once, where rolling
        took a dozen numpy calls, most of what featurising one short prompt cost.
        """
        modulus = 1 << 64
        sizes = range(self.min_n, self.max_n + 1)
        powers = [
            [pow(_PRIME, n - 1 - k, modulus) * _MIX % modulus if k < n else 0 for n in sizes]
            for k in range(self.max_n)
        ]
        return (
            np.array(powers, dtype=np.uint64).reshape(self.max_n, len(sizes)),
            np.array([n * _MIX % modulus for n in sizes], dtype=np.uint64),
            np.uint64(self.n_features - 1),
        )

    @cached_property
    def _sizes(self) -> npt.NDArray[np.int64]:
        return np.arange(self.min_n, self.max_n + 1, dtype=np.int64)

    def _buckets(self, joined: bytes) -> npt.NDArray[np.int64]:
        """(bytes - min_n + 1, sizes): the bucket of the n-gram of every size at every byte
        of `joined`, including those that run past the end of their prompt."""
        powers, offsets, mask = self._hash_product
        padded = joined + bytes(max(self.max_n - self.min_n, 0))
        data = np.frombuffer(padded, dtype=np.uint8).astype(np.uint64)
        rows = max(len(joined) - self.min_n + 1, 0)
        windows: npt.NDArray[np.uint64] = np.ndarray(
            (rows, self.max_n), np.uint64, data, strides=(8, 8)
        )
        mixed = windows @ powers
        mixed += offsets
        mixed >>= _SHIFT
        mixed &= mask
        return mixed.view(np.int64)

    def featurise(self, prompts: Sequence[str]) -> SparseBatch:
        encoded = [
            b" " + p.lower().encode("utf-8", "replace")[: self.max_prompt_bytes] + b" "
            for p in prompts
        ]
        n_docs = len(encoded)
        joined = b"".join(encoded)
        buckets = self._buckets(joined)
        rows = len(buckets)
        if n_docs == 1:
            # One prompt, as a router deciding one by one sees it: no grouping by prompt.
            # The n-grams of size n start at the first len - n + 1 bytes; their
            # concatenation is sorted in place (np.sort would copy it first).
            sizes = range(self.min_n, self.max_n + 1)
            indices = np.concatenate(
                [buckets[: max(len(joined) - n + 1, 0), j] for j, n in enumerate(sizes)]
            )
            indices.sort()
            distinct, counts = _counted(indices)
            norm = math.sqrt(max(float(counts @ counts), 1.0))
            return SparseBatch(
                indptr=np.array([0, len(distinct)], dtype=np.int64),
                indices=distinct,
                values=counts / norm,
                n_grams=np.array([len(indices)], dtype=np.int64),
                n_features=self.n_features,
                words=request_words(prompts),
            )
        lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=n_docs)
        n_grams = np.maximum(lengths[:, None] - self._sizes + 1, 0).sum(axis=1)
        # Keys (prompt, bucket), sorted in place: one sort of the batch groups the entries
        # by prompt and each prompt's equal n-grams together. The entries that run past
        # their prompt's end are keyed past every prompt's, so they sort last and are cut.
        keys = buckets
        keys += np.repeat(np.arange(n_docs, dtype=np.int64) * self.n_features, lengths)[:rows, None]
        keys.reshape(-1)[self._crossing(np.cumsum(lengths), rows)] = n_docs * self.n_features
        flat = keys.reshape(-1)
        if (n_docs + 1) * self.n_features <= 1 << 31:
            # Keys that fit 32 bits sort in half the time of 64-bit ones (this sort was a
            # third of featurising a batch).
            flat = flat.astype(np.int32)
        flat.sort()
        distinct, counts = _counted(flat[: int(n_grams.sum())])
        # Sorted by prompt: each prompt's entries start where its first key would be, and
        # its squared length is a difference of running sums (of integers: exact). In
        # place where it can be: large temporaries pay their page faults on every call.
        firsts = np.arange(n_docs + 1, dtype=distinct.dtype) * self.n_features
        indptr = np.searchsorted(distinct, firsts)
        squares = np.zeros(len(counts) + 1, dtype=np.int64)
        np.multiply(counts, counts, out=squares[1:])
        np.cumsum(squares[1:], out=squares[1:])
        norms = np.sqrt(np.maximum(squares[indptr[1:]] - squares[indptr[:-1]], 1.0))
        scale = np.repeat(norms, indptr[1:] - indptr[:-1])
        distinct &= self.n_features - 1
        return SparseBatch(
            indptr=indptr,
            indices=distinct.astype(np.int64, copy=False),
            values=np.divide(counts, scale, out=scale),
            n_grams=n_grams,
            n_features=self.n_features,
            words=request_words(prompts),
        )

    def _crossing(self, ends: npt.NDArray[np.int64], rows: int) -> npt.NDArray[np.int64]:
        """Where the entries of `_buckets` (flattened) that start in a prompt but end past
        it are: those of size n starting 1 to n - 1 bytes before a prompt's end."""
        before = np.concatenate([np.arange(1, n, dtype=np.int64) for n in self._sizes])
        column = np.repeat(np.arange(len(self._sizes), dtype=np.int64), self._sizes - 1)
        start = ends[:, None] - before
        return (start * len(self._sizes) + column)[(start >= 0) & (start < rows)]


def request_words(prompts: Sequence[str]) -> npt.NDArray[np.int64]:
    """(rows, _MAX_WORDS + 3) hashed tokens saying what kind of request each prompt is,
    distinct and sorted, padded with -1: its first words (lower-cased, punctuation marks
    as words), and its shape: the first and the last word and its length in half-octaves.

    Character n-grams tell prompts apart, but hardly tell kinds of request apart: on the
    four shared benchmarks interleaved, two prompts of one benchmark are barely more alike
    in n-grams than two of different ones (cosine 0.02 against -0.01 after centring), so
    what a kind costs or how well a model does on it is learned slowly and noisily from
    them. The words a request is made of, and above all how it begins and ends and how
    long it is ("which ... ?", "is ... ", "... _ ...") say much more: spherical k-means on
    these tokens groups the same stream into 32 clusters 94% pure by benchmark, against
    79% on n-grams. They are hashed with CRC-32, stable across processes.
    """
    if len(prompts) > 1:
        joined = _SEPARATOR.join(prompt[:_HEAD_CHARS] for prompt in prompts).lower()
        if joined.count(_SEPARATOR) == len(prompts) - 1:  # no prompt holds the separator
            return _batch_words(prompts, joined)
    word_bucket = _WORDS.__getitem__
    tokens: list[int] = []
    counts: list[int] = []
    for prompt in prompts:
        # Only the head is read for words (a long prompt's first words fit in it) and the
        # tail for the last one, so a huge prompt costs no more than a short one.
        words = _WORD.findall(prompt[:_HEAD_CHARS].lower())
        distinct = set(map(word_bucket, words[:_MAX_WORDS]))
        distinct.add(_FIRST[words[0] if words else ""])
        distinct.add(_LAST[_last_word(prompt, words[-1] if words else "")])
        distinct.add(_LENGTH[len(prompt)])
        tokens.extend(distinct)
        counts.append(len(distinct))
    return _sorted_rows(tokens, counts)


def _last_word(prompt: str, head_last: str) -> str:
    """The prompt's last word: its head's last word, or read from its tail if the head
    does not reach its end."""
    if len(prompt) > _HEAD_CHARS:
        tail = _WORD.findall(prompt[-_TAIL_CHARS:].lower())
        return tail[-1] if tail else ""
    return head_last


def _batch_words(prompts: Sequence[str], joined: str) -> npt.NDArray[np.int64]:
    """request_words of several prompts from their heads joined by _SEPARATOR (lowered):
    one regex pass and one dict lookup per word for the batch, where a pass and a set
    per prompt cost twice as much. The separator is a token of its own, so each
    prompt's words lie between two of them."""
    words = _WORD.findall(joined)
    n_words = len(words)
    buckets = np.fromiter(map(_WORDS.__getitem__, words), dtype=np.int64, count=n_words)
    # The separators are among the words of the separator's bucket, with the few words
    # that hash alike: compared there only, not word by word.
    candidates = np.flatnonzero(buckets == _WORDS[_SEPARATOR]).tolist()
    separators = np.array([i for i in candidates if words[i] == _SEPARATOR], dtype=np.int64)
    is_separator = np.zeros(n_words, dtype=bool)
    is_separator[separators] = True
    starts = np.concatenate(([0], separators + 1))
    ends = np.append(separators, n_words)
    row = np.cumsum(is_separator)
    kept = ~is_separator & (np.arange(n_words) - starts[row] < _MAX_WORDS)
    starts_list, ends_list = starts.tolist(), ends.tolist()
    firsts = [words[a] if a < b else "" for a, b in zip(starts_list, ends_list, strict=True)]
    lasts = [
        _last_word(prompt, words[b - 1] if a < b else "")
        for prompt, a, b in zip(prompts, starts_list, ends_list, strict=True)
    ]
    n = len(prompts)
    shape = np.fromiter(
        itertools.chain(
            map(_FIRST.__getitem__, firsts),
            map(_LAST.__getitem__, lasts),
            map(_LENGTH.__getitem__, map(len, prompts)),
        ),
        dtype=np.int64,
        count=3 * n,
    )
    keys = np.concatenate(
        (row[kept] * WORD_BUCKETS + buckets[kept], np.tile(np.arange(n), 3) * WORD_BUCKETS + shape)
    )
    keys.sort()
    distinct = np.empty(len(keys), dtype=bool)
    distinct[0] = True
    np.not_equal(keys[1:], keys[:-1], out=distinct[1:])
    return _padded(keys[distinct], n)


def _sorted_rows(tokens: list[int], counts: list[int]) -> npt.NDArray[np.int64]:
    """The rows of request_words from each row's distinct tokens, concatenated."""
    if len(counts) == 1:
        # One prompt, as a router deciding one by one sees it: a dozen tokens sort and pad
        # faster in Python than the numpy calls that do it for a batch.
        return np.array([sorted(tokens) + [-1] * (_WIDTH - len(tokens))], dtype=np.int64)
    row = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    return _padded(np.sort(row * WORD_BUCKETS + np.array(tokens, dtype=np.int64)), len(counts))


def _padded(keys: npt.NDArray[np.int64], n_rows: int) -> npt.NDArray[np.int64]:
    """Rows of tokens padded with -1 from sorted, distinct (row, token) keys: the tokens
    scattered to their places (building the padded rows as Python lists and converting
    them cost twice as much)."""
    row = keys // WORD_BUCKETS
    lengths = np.bincount(row, minlength=n_rows)
    shift = np.arange(n_rows, dtype=np.int64) * _WIDTH - (np.cumsum(lengths) - lengths)
    padded = np.full((n_rows, _WIDTH), -1, dtype=np.int64)
    padded.reshape(-1)[np.arange(len(keys)) + shift.take(row)] = keys % WORD_BUCKETS
    return padded


class _Buckets(dict[Any, int]):
    """The buckets of one kind of token seen before, filled on a miss: most words recur
    from prompt to prompt, a lookup is a tenth of a hash, and map() over a dict's
    __getitem__ looks up a prompt's words with no Python call per word."""

    def __init__(self, kind: str, token: Callable[[Any], str] = str) -> None:
        super().__init__()
        self.kind = kind
        self.token = token

    def __missing__(self, key: Any) -> int:
        if len(self) >= 1 << 20:
            self.clear()
        text = (self.kind + self.token(key)).encode("utf-8", "replace")
        bucket = self[key] = zlib.crc32(text) % WORD_BUCKETS
        return bucket


_WORDS = _Buckets("w:")
_FIRST = _Buckets("first:")
_LAST = _Buckets("last:")
# By the prompt's length in characters: its token is the length in half-octaves.
_LENGTH = _Buckets("length:", lambda length: str(int(2 * math.log2(length + 1))))
