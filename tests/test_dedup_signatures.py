"""Normalisation, shingles, MinHash signatures and band hashes (curate/dedup/normalize.py,
curate/dedup/signatures.py), against datasketch and exact Jaccard on real text."""

from __future__ import annotations

import random
import string

import numpy as np
import pytest
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

import curate.dedup.signatures as sg
from bench.dedup_data import edit, real_documents, true_jaccard
from curate.config import CurateConfig
from curate.dedup.config import DedupConfig
from curate.dedup.normalize import exact_key, near_tokens, near_words
from curate.dedup.signatures import MinHashParams, Signer, estimated_jaccard, params_from_config

PARAMS = MinHashParams(ngram=5, bands=14, rows=8, seed=1)


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer(PARAMS)


@pytest.fixture(scope="module")
def texts(shared_data) -> list[str]:
    return [t for _, t in real_documents()[:200]]


def _shingles_per_doc(signer: Signer, texts: list[str]) -> list[np.ndarray]:
    words, lengths = signer.word_hashes(texts)
    shingles, counts = signer.shingle_hashes(words, lengths)
    offsets = np.concatenate(([0], np.cumsum(counts)))
    return [shingles[offsets[i] : offsets[i + 1]] for i in range(len(texts))]


def test_signatures_are_datasketch_affine32_update_batch(signer: Signer, texts: list[str]) -> None:
    # Real documents plus one longer than a permutation chunk (the _min_over path).
    docs = texts[:40] + [" ".join(texts[:40])]
    assert len(_shingles_per_doc(signer, docs[-1:])[0]) > sg.CHUNK_SHINGLES
    batch = signer.signatures(docs)
    for i, shingles in enumerate(_shingles_per_doc(signer, docs)):
        reference = MinHash(num_perm=PARAMS.num_perm, seed=PARAMS.seed, hashfunc=lambda x: x)
        reference.update_batch([int(h) for h in shingles])
        assert reference.scheme == "affine32"
        np.testing.assert_array_equal(batch.sig[i], reference.hashvalues)


def test_a_signature_does_not_depend_on_its_batch(texts: list[str]) -> None:
    # Units cut batches differently with other worker counts: the result must not change.
    alone = np.stack([Signer(PARAMS).signatures([t]).sig[0] for t in texts[:25]])
    together = Signer(PARAMS).signatures(texts[:25]).sig
    np.testing.assert_array_equal(alone, together)
    other = Signer(PARAMS).signatures(list(reversed(texts[:25]))).sig[::-1]
    np.testing.assert_array_equal(other, together)


def test_seed_changes_the_permutations(texts: list[str]) -> None:
    a = Signer(PARAMS).signatures(texts[:3]).sig
    b = Signer(MinHashParams(5, 14, 8, seed=2)).signatures(texts[:3]).sig
    assert not np.array_equal(a, b)


def test_short_document_is_one_shingle_of_all_its_words(signer: Signer) -> None:
    [one] = _shingles_per_doc(signer, ["Hello, world!"])
    assert len(one) == 1
    [same] = _shingles_per_doc(signer, ["hello   WORLD"])
    np.testing.assert_array_equal(one, same)
    [other] = _shingles_per_doc(signer, ["hello there world"])
    assert other[0] != one[0]
    [five] = _shingles_per_doc(signer, ["one two three four five"])
    assert len(five) == 1
    [six] = _shingles_per_doc(signer, ["one two three four five six"])
    assert len(six) == 2


def test_documents_without_words_have_no_signature(signer: Signer) -> None:
    batch = signer.signatures(["", "   \n\t", "!!! --- ...", "real words here"])
    assert batch.has_shingles.tolist() == [False, False, False, True]


def test_word_order_matters(signer: Signer) -> None:
    a = "the cat sat on the mat while the dog slept by the door"
    b = "door the by slept dog the while mat the on sat cat the"
    sig = signer.signatures([a, b]).sig
    assert estimated_jaccard(sig[0], sig[1]) < 0.2


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.printable, max_size=300))
def test_ascii_fast_path_gives_the_reference_words(text: str) -> None:
    assert [w.decode() for w in near_tokens(text)] == near_words(text)  # type: ignore[union-attr]


def test_near_words_normalisation() -> None:
    assert near_words("Café NAÏVE résumé") == ["cafe", "naive", "resume"]
    assert near_words("In 2024, 1,234.5 people paid $3.99.") == ["in", "0", "0", "people", "paid", "0"]
    assert near_words("don't-stop_now") == ["don", "t", "stop", "now"]
    # Non-ASCII text goes through the str path and still hashes like the ASCII path.
    assert [w.decode() for w in near_tokens("plain words 42")] == near_words("plain words 42 ’")[:3]


def test_exact_key_ignores_case_and_whitespace_only() -> None:
    base = exact_key("The quick brown fox.\nJumps over.")
    assert exact_key("  the QUICK brown   fox.  jumps\tover. ") == base
    assert exact_key("The quick brown fox. Jumps over!") != base
    assert exact_key("The quick brown fox.Jumps over.") != base


def test_estimated_jaccard_tracks_true_jaccard(signer: Signer, texts: list[str]) -> None:
    rng = random.Random(3)
    errors = []
    for text in texts[:60]:
        copy = edit(text, rng.choice([0.02, 0.05, 0.1, 0.2]), rng)
        sig = signer.signatures([text, copy]).sig
        errors.append(estimated_jaccard(sig[0], sig[1]) - true_jaccard(text, copy))
    # 112 permutations: standard error sqrt(J(1-J)/112) <= 0.047.
    assert abs(float(np.mean(errors))) < 0.03
    assert float(np.mean(np.abs(errors))) < 0.05


def test_band_hash_changes_only_with_its_band(signer: Signer, texts: list[str]) -> None:
    sig = signer.signatures(texts[:1]).sig
    changed = sig.copy()
    changed[0, 3 * PARAMS.rows + 2] ^= 1  # one value of band 3
    a, b = signer.band_hashes(sig)[0], signer.band_hashes(changed)[0]
    assert [i for i in range(PARAMS.bands) if a[i] != b[i]] == [3]


def test_defaults_are_fineweb_and_threshold_derives_bands() -> None:
    default = params_from_config(CurateConfig().dedup)
    assert (default.ngram, default.bands, default.rows, default.num_perm) == (5, 14, 8, 112)
    assert default.candidate_probability(0.9) > 0.999
    assert default.candidate_probability(0.5) < 0.06
    derived = params_from_config(DedupConfig(threshold=0.8))
    assert derived.bands * derived.rows <= 112
    assert (derived.bands, derived.rows) != (14, 8)
    # The derived S-curve crosses ~0.5 near the threshold and is steep around it.
    assert 0.3 < derived.candidate_probability(0.8) < 0.7
    assert derived.candidate_probability(0.9) > 0.9
    assert derived.candidate_probability(0.6) < 0.1
