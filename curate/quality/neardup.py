"""Near-duplicates between a training set and a test set, by MinHash (datasketch): the check that
keeps a held-out estimate honest when documents are re-assembled, chunked, syndicated or share
boilerplate (issue 15). One rule for every split in curate.quality: word 5-grams of the lowercased
text, 64 permutations with a fixed seed, LSH candidates confirmed by their estimated Jaccard."""

from __future__ import annotations

from collections.abc import Sequence

# Jaccard >= 0.5 on word 5-grams: half the shingles shared is far beyond chance for two
# independent texts of a few hundred words, and catches a page re-assembled from another's lines.
THRESHOLD = 0.5
NUM_PERM = 64
SHINGLE_WORDS = 5
SEED = 1
RULE = (
    f"MinHash (datasketch, {NUM_PERM} permutations, seed {SEED}) of lowercased word {SHINGLE_WORDS}-grams; "
    f"LSH candidates kept when their estimated Jaccard is >= {THRESHOLD}"
)


def _shingles(text: str) -> list[bytes]:
    words = text.lower().split()
    if len(words) <= SHINGLE_WORDS:
        return [" ".join(words).encode()]
    return [" ".join(words[i : i + SHINGLE_WORDS]).encode() for i in range(len(words) - SHINGLE_WORDS + 1)]


def sketches(texts: Sequence[str]) -> list:
    """One LeanMinHash per text (bulk-computed: datasketch hashes a batch in numpy)."""
    from datasketch import LeanMinHash, MinHash

    return [LeanMinHash(m) for m in MinHash.bulk([_shingles(t) for t in texts], num_perm=NUM_PERM, seed=SEED)]


def near_duplicates(train: Sequence[str], test: Sequence[str], threshold: float = THRESHOLD) -> list[int]:
    """Indices of `test` texts with a near-duplicate among `train` (empty texts never match)."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    train_sk = sketches(train)
    for i, (text, m) in enumerate(zip(train, train_sk)):
        if text.strip():
            lsh.insert(i, m)
    hits = []
    for j, (text, m) in enumerate(zip(test, sketches(test))):
        if text.strip() and any(m.jaccard(train_sk[i]) >= threshold for i in lsh.query(m)):
            hits.append(j)
    return hits
