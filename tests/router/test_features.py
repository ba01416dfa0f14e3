from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from router.features import _SEPARATOR, _WORDS, WORD_BUCKETS, HashedNgrams, request_words


def test_rows_are_unit_norm_and_stable_across_calls() -> None:
    featuriser = HashedNgrams(n_features=1 << 12)
    batch = featuriser.featurise(["Which planet is largest?", "ok", ""])
    assert batch.n_rows == 3
    for r in range(2):
        row = batch.row(r)
        assert np.isclose(np.sum(row.values**2), 1.0)
        assert np.all((row.indices >= 0) & (row.indices < 1 << 12))
    assert batch.row(2).indices.size == 0  # too short for any 3-gram: no features, no NaN
    again = featuriser.featurise(["Which planet is largest?"])
    np.testing.assert_array_equal(again.indices, batch.row(0).indices)


def test_batch_equals_one_by_one() -> None:
    featuriser = HashedNgrams()
    prompts = ["alpha beta", "gamma", "Ünïcödé text — ok", "alpha beta"]
    batch = featuriser.featurise(prompts)
    for r, prompt in enumerate(prompts):
        single = featuriser.featurise([prompt])
        np.testing.assert_array_equal(single.indices, batch.row(r).indices)
        np.testing.assert_allclose(single.values, batch.row(r).values)


def test_case_insensitive_and_bounded() -> None:
    featuriser = HashedNgrams(max_prompt_bytes=64)
    a = featuriser.featurise(["HELLO world " * 100])
    b = featuriser.featurise(["hello WORLD " * 100])
    np.testing.assert_array_equal(a.indices, b.indices)
    assert a.indices.size < 64 * 3


def test_rows_selects_in_order() -> None:
    batch = HashedNgrams().featurise(["one", "two two", "three"])
    picked = batch.rows(np.array([2, 0]))
    np.testing.assert_array_equal(picked.row(0).indices, batch.row(2).indices)
    np.testing.assert_array_equal(picked.row(1).indices, batch.row(0).indices)


def test_rows_sorted_distinct_looks_within_rows_only() -> None:
    batch = HashedNgrams().featurise(["", "one two three", "x", "four five six", ""])
    assert batch.rows_sorted_distinct()
    descending_across_rows = batch.rows(np.array([3, 1, 0]))
    assert descending_across_rows.rows_sorted_distinct()
    row = batch.row(1)
    repeated = dataclasses.replace(
        row, indices=row.indices[[0, 0, *range(1, len(row.indices) - 1)]]
    )
    assert not repeated.rows_sorted_distinct()
    assert HashedNgrams().featurise([]).rows_sorted_distinct()


def test_n_features_must_be_power_of_two() -> None:
    with pytest.raises(ValueError, match="power of two"):
        HashedNgrams(n_features=1000)


def test_no_prompts_make_an_empty_batch() -> None:
    """No prompts make a batch of no rows (this raised TypeError: the row lengths of an
    empty list were floats, which np.repeat refuses)."""
    x = HashedNgrams().featurise([])
    assert x.n_rows == 0
    assert x.dot(np.ones(x.n_features)).shape == (0,)


def test_a_batch_product_is_each_rows_own_with_empty_rows_anywhere() -> None:
    """Rows without an n-gram (too short a prompt), first, inside or last, give 0, and
    every other row the product it has alone, for one column, several, and folded weights."""
    featuriser = HashedNgrams()
    batch = featuriser.featurise(["", "which one?", "", "a longer prompt here", "ok", ""])
    rng = np.random.default_rng(0)
    for weights, folded in (
        (rng.normal(size=featuriser.n_features), False),
        (rng.normal(size=(featuriser.n_features, 3)), False),
        (rng.normal(size=(64, 2)), True),
    ):
        together = batch.dot(weights, folded=folded)
        assert together.shape == (batch.n_rows, *weights.shape[1:])
        for r in range(batch.n_rows):
            alone = batch.row(r).dot(weights, folded=folded)[0]
            np.testing.assert_allclose(together[r], alone, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(together[[0, 2, 5]], 0.0)


def test_a_repeated_ngram_is_one_entry_and_the_length_is_kept() -> None:
    """A prompt repeating its words has unit length like any other (the text layer's step
    on it is then one step, not one per repeat), and its n-gram count still says how long
    it is (the cost model reads that)."""
    featuriser = HashedNgrams()
    once = featuriser.featurise(["ask the model"])
    thrice = featuriser.featurise(["ask the model " * 3])
    assert len(np.unique(thrice.indices)) == len(thrice.indices)
    assert np.isclose(np.sum(thrice.values**2), 1.0)
    assert thrice.n_grams[0] > 2.5 * once.n_grams[0]
    batch = featuriser.featurise(["ask the model", "", "ask the model " * 3])
    np.testing.assert_array_equal(batch.n_grams, [once.n_grams[0], 0, thrice.n_grams[0]])
    np.testing.assert_array_equal(batch.rows(np.array([2])).n_grams, thrice.n_grams)


def test_request_words_are_distinct_sorted_and_padded_and_read_a_long_prompt_by_its_ends() -> None:
    prompts = ["Is the sky blue?", "", "Which of these is a mammal? " + "padding " * 5000 + "end"]
    words = request_words(prompts)
    assert words.shape == (3, 48)
    for row in words:
        present = row[row >= 0]
        assert np.all(np.diff(present) > 0) and np.all(row[len(present) :] == -1)
        assert np.all(present < WORD_BUCKETS)
    assert np.count_nonzero(words[1] >= 0) == 3  # an empty prompt still has its shape
    # The last word of a long prompt is read from its tail: it differs from the same head
    # ending otherwise.
    other = request_words([prompts[2][:-3] + "start"])
    assert not np.array_equal(other[0], words[2])
    np.testing.assert_array_equal(HashedNgrams().featurise(prompts).words, words)


def test_request_words_of_a_batch_are_each_prompts_own() -> None:
    """A batch reads its prompts' words in one pass over their joined heads; each row must
    be what the prompt gives alone: empty and long prompts, a final sigma at a head's end,
    a word that hashes to the separator's bucket, and a batch holding the separator itself
    (read prompt by prompt)."""
    colliding = next(
        word for word in (f"w{i}" for i in range(100_000)) if _WORDS[word] == _WORDS[_SEPARATOR]
    )
    prompts = [
        "Is the sky blue?",
        "",
        "ΟΔΟΣ ΣΑΣ " * 120 + "Σ",
        "Which of these is a mammal? " + "padding " * 500 + "end.",
        f"{colliding} is it {colliding}",
        "ÅNGSTRÖM — “quoted” İstanbul",
        "   ",
    ]
    for batch in (prompts, [*prompts, f"a{_SEPARATOR}b"]):
        together = request_words(batch)
        alone = np.vstack([request_words([prompt]) for prompt in batch])
        np.testing.assert_array_equal(together, alone)
