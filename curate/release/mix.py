"""Which documents go into a release, and in what order: a pure function of sizes, flags,
the mix config and its seed (numpy only, no I/O), so it can be tested on its own.

Rows are numbered globally over all input parts (web parts first, then synthetic). The plan
is `order`: the global row numbers of the release, position by position; the first
`n_validation` positions are the validation split. Memory: 8 bytes per input row for the
order plus 1 for the flag (a billion rows: 9 GB; split the release long before that).

Bucket weights above 1 repeat documents: a row number then appears once per copy in the
train part of `order` (shuffled, so copies are spread), never in validation, and `copies`
numbers them (0: the first in release order; 2 more bytes per release row)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from curate.core.errors import ConfigError
from curate.release.config import MixConfig

WEB = "web"
SYNTHETIC = "synthetic"


@dataclass
class MixPlan:
    order: np.ndarray  # int64 global row numbers, in release order
    n_validation: int
    # {"web": {"documents": n, "tokens": t | None}, "synthetic": {...}}, before and after mixing
    available: dict[str, dict[str, int | None]] = field(default_factory=dict)
    selected: dict[str, dict[str, int | None]] = field(default_factory=dict)
    # With repeats (cfg.repeats): each position's copy number (0: the document's first row),
    # and the extra copies of validation documents left out (validation holds each document once).
    copies: np.ndarray | None = None
    validation_copies_dropped: int = 0

    @property
    def n_rows(self) -> int:
        return int(self.order.size)


def plan_mix(
    synthetic: np.ndarray, tokens: np.ndarray | None, cfg: MixConfig, buckets: np.ndarray | None = None
) -> MixPlan:
    """synthetic: bool per global row; tokens: int per row, or None when not counted; buckets:
    quality_bucket per row (-1: unscored), needed when cfg.bucket_weights is set."""
    synthetic = np.asarray(synthetic, dtype=bool)
    eligible = np.ones(synthetic.size, dtype=bool)
    copies = np.ones(synthetic.size, dtype=np.int64)  # rows of each document if picked
    if cfg.bucket_weights:
        if buckets is None:
            raise ConfigError(
                "release.mix.bucket_weights is set but the inputs have no quality_bucket column. Fix: run with "
                "quality.enabled=true, or remove release.mix.bucket_weights"
            )
        weight = np.ones(21)  # index 20: unscored (-1)
        for b, w in cfg.bucket_weights.items():
            weight[b] = w
        # Its own generator: the draws of the mix below stay what they were without weights.
        # One uniform per row: w <= 1 keeps the row when it is below w; w = k + f gives k
        # copies plus one more when it is below f (the same rule, so w <= 1 draws as before).
        draw = np.random.default_rng([cfg.seed, 1]).random(synthetic.size)
        row_weight = weight[np.asarray(buckets, dtype=np.int64)]
        whole = np.floor(row_weight)
        copies = np.where(synthetic, 1, whole + (draw < row_weight - whole)).astype(np.int64)
        eligible = copies > 0
    if cfg.unit == "tokens" and tokens is None and (cfg.budget or cfg.synthetic_fraction is not None):
        raise ConfigError(
            "release.mix.unit is tokens but no tokens were counted. Fix: set release.count_tokens=true or "
            "release.mix.unit=documents"
        )
    # Unsized (take everything): no sizes needed, so tokens may still be uncounted here.
    # A document's size counts its copies: budgets are what the trainer reads.
    size = (
        np.asarray(tokens, dtype=np.int64)
        if cfg.unit == "tokens" and tokens is not None
        else np.ones(synthetic.size, dtype=np.int64)
    ) * copies
    web_rows, syn_rows = np.flatnonzero(~synthetic & eligible), np.flatnonzero(synthetic)
    have_web, have_syn = int(size[web_rows].sum()), int(size[syn_rows].sum())
    want_web, want_syn = _targets(have_web, have_syn, cfg)

    # One generator, always drawn in the same order: web, synthetic, final interleaving (and,
    # with repeats, the train order with its copies).
    rng = np.random.default_rng(cfg.seed)
    picked_web = _pick(rng.permutation(web_rows), size, want_web)
    picked_syn = _pick(rng.permutation(syn_rows), size, want_syn)
    order = rng.permutation(np.concatenate([picked_web, picked_syn]).astype(np.int64))
    n_val = int(round(order.size * cfg.validation_fraction))
    if cfg.validation_max_documents:
        n_val = min(n_val, cfg.validation_max_documents)

    def describe(rows: np.ndarray) -> dict[str, int | None]:
        return {"documents": int(rows.size), "tokens": int(tokens[rows].sum()) if tokens is not None else None}

    plan = MixPlan(
        order=order,
        n_validation=n_val,
        available={WEB: describe(web_rows), SYNTHETIC: describe(syn_rows)},
        selected={WEB: describe(picked_web), SYNTHETIC: describe(picked_syn)},
    )
    if cfg.repeats:
        _repeat(plan, copies, rng, synthetic, tokens)
    return plan


def _repeat(
    plan: MixPlan, copies: np.ndarray, rng: np.random.Generator, synthetic: np.ndarray, tokens: np.ndarray | None
) -> None:
    """Validation: the first n_validation distinct documents of the shuffled order, each once
    (a copy in train would leak it). Train: the other documents, each repeated, shuffled
    again so that copies land far apart. Then each position's copy number."""
    validation, rest = plan.order[: plan.n_validation], plan.order[plan.n_validation :]
    plan.validation_copies_dropped = int(copies[validation].sum() - validation.size)
    plan.order = np.concatenate([validation, rng.permutation(np.repeat(rest, copies[rest]))])
    plan.copies = copy_numbers(plan.order)
    for source, rows in ((WEB, plan.order[~synthetic[plan.order]]), (SYNTHETIC, plan.order[synthetic[plan.order]])):
        # documents: distinct; rows and tokens: with copies, as written.
        plan.selected[source]["rows"] = int(rows.size)
        plan.selected[source]["tokens"] = int(tokens[rows].sum()) if tokens is not None else None


def copy_numbers(order: np.ndarray) -> np.ndarray:
    """For each position of `order`, how many earlier positions hold the same row (0: its
    first): a stable sort by row, then the rank within each run."""
    by_row = np.argsort(order, kind="stable")
    rows = order[by_row]
    ranks = np.arange(order.size, dtype=np.int64)
    first = np.r_[True, rows[1:] != rows[:-1]] if rows.size else np.zeros(0, bool)
    ranks -= np.maximum.accumulate(np.where(first, ranks, 0)) if rows.size else 0
    out = np.empty(order.size, dtype=np.int16)
    out[by_row] = ranks
    return out


def _targets(have_web: int, have_syn: int, cfg: MixConfig) -> tuple[int, int]:
    """How many units to take from each source. Integer arithmetic where a side is taken
    whole, so "everything" never loses a document to float rounding."""
    unit, budget, fraction = cfg.unit, cfg.budget, cfg.synthetic_fraction
    have = have_web + have_syn
    if fraction is None:
        if not budget:
            return have_web, have_syn
        if budget > have:
            raise ConfigError(
                f"release.mix.budget={budget} {unit}, but the inputs hold {have} {unit}. "
                "Fix: lower release.mix.budget, or set it to 0 for everything"
            )
        want_web = round(budget * have_web / have) if have else 0
        return want_web, budget - want_web
    if fraction > 0 and have_syn == 0:
        raise ConfigError(
            f"release.mix.synthetic_fraction={fraction} but there are no synthetic {unit}. "
            "Fix: pass synthetic parts (curate release --synthetic PATH), or set release.mix.synthetic_fraction to null"
        )
    if fraction < 1 and have_web == 0:
        raise ConfigError(
            f"release.mix.synthetic_fraction={fraction} but there are no web {unit}. "
            "Fix: pass curated web documents, or set release.mix.synthetic_fraction to 1"
        )
    if budget:
        want_syn = round(budget * fraction)
        want_web = budget - want_syn
        if want_web > have_web or want_syn > have_syn:
            most = _largest_total(have_web, have_syn, fraction)
            raise ConfigError(
                f"release.mix.budget={budget} {unit} at synthetic_fraction={fraction} needs {want_web} web and "
                f"{want_syn} synthetic {unit}; "
                f"the inputs hold {have_web} and {have_syn} (at most {most} {unit} at this fraction). "
                "Fix: lower release.mix.budget, set it to 0 for the largest mix, or change the fraction"
            )
        return want_web, want_syn
    if fraction == 0:
        return have_web, 0
    if fraction == 1:
        return 0, have_syn
    if have_syn * (1 - fraction) <= have_web * fraction:  # synthetic runs out first: take it all
        return min(have_web, round(have_syn * (1 - fraction) / fraction)), have_syn
    return have_web, min(have_syn, round(have_web * fraction / (1 - fraction)))


def _largest_total(have_web: int, have_syn: int, fraction: float) -> int:
    if fraction == 0:
        return have_web
    if fraction == 1:
        return have_syn
    return int(min(have_syn / fraction, have_web / (1 - fraction)))


def _pick(shuffled: np.ndarray, size: np.ndarray, want: int) -> np.ndarray:
    """Documents in shuffled order while they fit in `want`; one that would overflow is
    skipped and filling goes on with the smaller ones after it (a single 20k-token document
    must not end a 25k budget at 7k). Each round is one vectorised prefix; 64 rounds bound
    the work, and by then what is left is smaller than the smallest remaining document."""
    chosen = []
    left, rest = want, shuffled
    for _ in range(64):
        rest = rest[size[rest] <= left]  # documents that could still fit
        if left <= 0 or rest.size == 0:
            break
        cum = np.cumsum(size[rest])
        k = int(np.searchsorted(cum, left, side="right"))
        chosen.append(rest[:k])
        left -= int(cum[k - 1]) if k else 0
        rest = rest[k:]
    return np.concatenate(chosen) if chosen else shuffled[:0]
