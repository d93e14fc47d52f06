"""Training the quality classifier: fastText supervised on normalised text, a seeded held-out
split, and a model card that says what the model was trained on and how well it did."""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from curate.core.errors import ConfigError, InputError
from curate.core.parquet_io import sha256_file
from curate.quality.evaluate import best_f1_threshold, metrics
from curate.quality.labels import LabelKind, read_labelled
from curate.quality.model import NEGATIVE, POSITIVE, card_path
from curate.quality.normalize import normalize

CARD_VERSION = 1
# fasttext-numpy2-wheel 0.9.2 (and fasttext-numpy2 0.10.4) fail ~3 runs in 4 with a spurious
# "Encountered NaN" and give a different model on each run even with thread=1 and a seed
# (measured: 8 runs, 6 distinct models); fasttext-ng 0.9.3 and fasttext-wheel 0.9.2 give one
# model, byte for byte. A run that hits the spurious NaN is retried.
NAN_RETRIES = 10
DETERMINISTIC_FIX = "pip install --no-deps fasttext-ng==0.9.3 (same API, numpy 2, deterministic training)"


@dataclass(frozen=True)
class TrainParams:
    """fastText hyper-parameters. The defaults give a 1.1 MB .ftz that trains in ~30-60 s on
    the 8.7k chunks of the default data on one core. Alternatives measured on the held-out
    web-like set (ROC-AUC typical web / news bodies of both benchmark halves, 16 of 161
    explanatory; bench/RESULTS-quality.md): these defaults 0.978 / 0.760; epoch 5, epoch 20,
    lr 0.5, dim 64, word_ngrams 1 or 3: 0.977-0.981 / 0.749-0.766; character n-grams 3-6 or
    4-5: 0.971-0.974 / 0.762-0.767 at 0.08x-0.27x the predict speed. None beyond noise."""

    # 2: bigrams separate "how to" and "you can" from "add to cart"; they scored best on the
    # news subsets, the hard part of the web set.
    word_ngrams: int = 2
    # 32 dims: a two-class task needs little; 100 gave no better AUC and a 2.3x larger model.
    dim: int = 32
    epoch: int = 10
    lr: float = 0.2
    # Words seen fewer than 3 times are mostly names and typos that tie a chunk to its source.
    min_count: int = 3
    # Character n-grams of minn..maxn characters inside each word (fastText subwords; 0, 0:
    # none). They share the hash buckets with the word n-grams and cost predict time: every
    # word of a scored page is cut into its n-grams (measured: bench/RESULTS-quality.md).
    minn: int = 0
    maxn: int = 0
    # Hash buckets for the bigrams: 200k x 32 floats = 25 MB in .bin, quantised away in .ftz.
    bucket: int = 200_000
    seed: int = 1
    # One thread: fastText's Hogwild updates make multi-threaded training non-deterministic.
    thread: int = 1
    # Quantisation (.ftz): keep the 40k most useful words and n-grams (the rest drop with
    # little loss on a 2-class task), product-quantise vectors in pairs of dims.
    cutoff: int = 40_000
    dsub: int = 2


def _split_key(group: Any, seed: int) -> float:
    digest = hashlib.sha1(f"{seed}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def heldout_mask(groups: list[Any], fraction: float, seed: int) -> list[bool]:
    """True for held-out lines. Whole groups (chunks of one document) go to one side, so
    held-out metrics measure new documents, not new paragraphs of seen ones."""
    return [_split_key(g, seed) < fraction for g in groups]


def fasttext_distribution() -> str:
    """Which distribution provides the `fasttext` module (several do, with different bugs)."""
    import importlib.metadata

    import fasttext

    where = Path(fasttext.__file__).resolve().parent.parent
    for dist in importlib.metadata.distributions(path=[str(where)]):
        files = dist.files or []
        if any(str(f).startswith("fasttext/") for f in files) and any(
            str(f).startswith("fasttext_pybind") for f in files
        ):
            return f"{dist.metadata['Name']}=={dist.version}"
    return "unknown"


_DETERMINISTIC: bool | None = None


def fasttext_is_deterministic() -> bool:
    """Train a tiny model 4 times (~0.1 s) and compare: False for the builds above."""
    global _DETERMINISTIC
    if _DETERMINISTIC is None:
        import fasttext

        rng = random.Random(0)
        vocab = [f"w{a}{b}" for a in "abcdefghij" for b in "abcdefghij"]
        with tempfile.TemporaryDirectory(prefix="curate-ftcheck-") as tmp:
            data = Path(tmp) / "check.txt"
            with open(data, "w") as f:
                for i in range(300):
                    words = [rng.choice(vocab[:60] if i % 2 else vocab[40:]) for _ in range(30)]
                    f.write(f"__label__{i % 2} {' '.join(words)}\n")
            outputs = set()
            for _ in range(4):
                try:
                    m = fasttext.train_supervised(
                        input=str(data),
                        dim=8,
                        epoch=5,
                        lr=0.2,
                        wordNgrams=2,
                        bucket=10_000,
                        thread=1,
                        seed=1,
                        verbose=0,
                    )
                except RuntimeError:
                    outputs.add("nan")
                    continue
                outputs.add(m.get_output_matrix().tobytes() + m.get_input_matrix().tobytes())
        _DETERMINISTIC = len(outputs) == 1 and "nan" not in outputs
    return _DETERMINISTIC


def _train_supervised(train_file: Path, params: TrainParams):
    import fasttext

    for attempt in range(NAN_RETRIES + 1):
        try:
            return fasttext.train_supervised(
                input=str(train_file),
                lr=params.lr,
                dim=params.dim,
                epoch=params.epoch,
                minCount=params.min_count,
                minn=params.minn,
                maxn=params.maxn,
                wordNgrams=params.word_ngrams,
                bucket=params.bucket,
                loss="softmax",
                thread=params.thread,
                seed=params.seed,
                verbose=0,
            )
        except RuntimeError as exc:
            if "NaN" not in str(exc) or attempt == NAN_RETRIES:
                raise RuntimeError(
                    f"fastText training diverged (NaN) {attempt + 1} times. If lr={params.lr} is not too high, the "
                    "fastText "
                    f"build is at fault ({fasttext_distribution()}). Fix: lower --lr, or {DETERMINISTIC_FIX}"
                ) from exc
    raise AssertionError("unreachable")


def _write_fasttext_file(path: Path, texts: list[str], labels: list[int], seed: int) -> None:
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)  # fastText reads in order; class-sorted input would bias the last epochs
    with open(path, "w", encoding="utf-8") as f:
        for i in order:
            f.write(f"{POSITIVE if labels[i] else NEGATIVE} {texts[i]}\n")


def train_classifier(
    input_jsonl: str | Path,
    output_model: str | Path,
    *,
    text_field: str = "text",
    label_field: str = "label",
    score_threshold: float = 3,
    label_kind: LabelKind = "auto",
    group_field: str | None = "group",
    heldout: float = 0.1,
    quantize: bool | None = None,
    params: TrainParams | None = None,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train on `input_jsonl`, write `output_model` (.ftz: quantised; .bin: full) and its card
    (`<stem>.card.json`); return the card. The decision threshold is the one with the best F1
    on the held-out split."""
    params = params or TrainParams()
    out = Path(output_model)
    if quantize is None:
        quantize = out.suffix == ".ftz"
    if not 0 < heldout < 1:
        raise ConfigError(f"heldout={heldout}: must be between 0 and 1 (exclusive). Fix: use e.g. 0.1")
    if params.maxn and not 1 <= params.minn <= params.maxn:
        raise ConfigError(
            f"minn={params.minn}, maxn={params.maxn}: character n-grams need 1 <= minn <= maxn. "
            "Fix: e.g. --set classifier.train.minn=3 --set classifier.train.maxn=6, or classifier.train.maxn=0 for none"
        )
    raw_texts, labels, info = read_labelled(
        input_jsonl, text_field, label_field, score_threshold, label_kind, group_field
    )
    texts = [normalize(t) for t in raw_texts]
    groups = info.pop("groups", None) or [None] * len(texts)
    groups = [g if g is not None else f"line-{i}" for i, g in enumerate(groups)]
    mask = heldout_mask(groups, heldout, params.seed)
    train_idx = [i for i, h in enumerate(mask) if not h and texts[i]]
    test_idx = [i for i, h in enumerate(mask) if h and texts[i]]
    # Groups keep a document's chunks together, but not two documents that share most of their
    # text (syndicated copies, pages re-assembled from shared boilerplate): such held-out lines
    # are dropped from the estimate, counted in the card (issue 15).
    from curate.quality.neardup import RULE, near_duplicates

    near = set(near_duplicates([texts[i] for i in train_idx], [texts[i] for i in test_idx]))
    test_idx = [i for k, i in enumerate(test_idx) if k not in near]
    near_after = len(near_duplicates([texts[i] for i in train_idx], [texts[i] for i in test_idx])) if near else 0
    for name, idx in (("training", train_idx), ("held-out", test_idx)):
        classes = {labels[i] for i in idx}
        if classes != {0, 1}:
            raise InputError(
                f"{input_jsonl}: the {name} split has only class(es) {sorted(classes)} ({len(idx)} lines). "
                "Fix: give more labelled lines of both classes, or a larger heldout fraction"
            )

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="curate-quality-") as tmp:
        train_file = Path(tmp) / "train.txt"
        _write_fasttext_file(train_file, [texts[i] for i in train_idx], [labels[i] for i in train_idx], params.seed)
        model = _train_supervised(train_file, params)
        if quantize:
            model.quantize(
                input=str(train_file),
                qnorm=True,
                retrain=True,
                cutoff=params.cutoff,
                dsub=params.dsub,
                thread=params.thread,
                verbose=0,
            )
        tmp_model = out.with_name(f".{out.name}.tmp")
        model.save_model(str(tmp_model))
        os.replace(tmp_model, out)

    from curate.quality.model import QualityModel

    scorer = QualityModel(out)  # score through the same path as the pipeline does
    held_texts = [texts[i] for i in test_idx]
    held_labels = [labels[i] for i in test_idx]
    scores = scorer.score_normalized(held_texts)
    threshold = best_f1_threshold(scores, held_labels)
    card = {
        "card_version": CARD_VERSION,
        "model_file": out.name,
        "model_sha256": sha256_file(out),
        "model_bytes": out.stat().st_size,
        "quantized": bool(quantize),
        "task": "P(educational): textbook-like explanatory text (label 1) vs typical web text (label 0)",
        "labels": {"positive": POSITIVE, "negative": NEGATIVE},
        "normalization": "curate.quality.normalize: lowercase, URLs/e-mails dropped, digits -> 0, sentence punctuation split off, other symbols dropped",  # noqa: E501
        "threshold": threshold,
        "threshold_rule": "max F1 on the held-out split (so the F1 below is optimistic; roc_auc is threshold-free)",
        "data": {
            "input": Path(input_jsonl).name,
            "input_sha256": sha256_file(Path(input_jsonl)),
            "label_kind": info["label_kind"],
            "score_threshold": info["score_threshold"],
            "documents": len(texts),
            "positives": sum(labels),
            "negatives": len(labels) - sum(labels),
            "skipped_unlabelled": info["skipped_unlabelled"],
            "provenance": provenance or {},
        },
        "split": {
            "heldout_fraction": heldout,
            "group_field": group_field,
            "seed": params.seed,
            "train": len(train_idx),
            "heldout": len(test_idx),
            "heldout_near_duplicates_dropped": len(near),
            "near_duplicates_after_filtering": near_after,
            "near_duplicate_rule": RULE,
        },
        "hyperparameters": {**asdict(params), "loss": "softmax", "quantize": bool(quantize)},
        "fasttext": {"distribution": fasttext_distribution(), "deterministic": fasttext_is_deterministic()},
        "heldout_metrics": metrics(scores, held_labels, threshold),
    }
    card_path(out).write_text(json.dumps(card, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return card
