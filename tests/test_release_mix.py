"""Mixing: which documents a release takes, pure numpy (curate.release.mix)."""

from __future__ import annotations

import numpy as np
import pytest

from curate.core.errors import ConfigError
from curate.release.config import MixConfig, ReleaseConfig
from curate.release.mix import plan_mix


def _inputs(n_web: int = 600, n_syn: int = 400, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    synthetic = np.r_[np.zeros(n_web, bool), np.ones(n_syn, bool)]
    tokens = rng.integers(50, 2000, size=n_web + n_syn)
    return synthetic, tokens


def test_everything_is_a_seeded_permutation() -> None:
    synthetic, tokens = _inputs()
    plan = plan_mix(synthetic, tokens, MixConfig(seed=5))
    assert sorted(plan.order.tolist()) == list(range(synthetic.size))
    assert plan.order.tolist() != list(range(synthetic.size))  # shuffled
    assert plan_mix(synthetic, tokens, MixConfig(seed=5)).order.tolist() == plan.order.tolist()
    assert plan_mix(synthetic, tokens, MixConfig(seed=6)).order.tolist() != plan.order.tolist()
    assert plan.selected["synthetic"] == {"documents": int(synthetic.sum()), "tokens": int(tokens[synthetic].sum())}


def test_web_and_synthetic_are_interleaved() -> None:
    synthetic, tokens = _inputs()
    order = plan_mix(synthetic, tokens, MixConfig()).order
    first_half = synthetic[order[: order.size // 2]].mean()
    assert 0.3 < first_half < 0.5  # 40% synthetic overall, spread through the order


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_synthetic_fraction_in_tokens_with_budget(fraction: float) -> None:
    synthetic, tokens = _inputs()
    budget = 300_000
    plan = plan_mix(synthetic, tokens, MixConfig(synthetic_fraction=fraction, budget=budget))
    chosen = plan.order
    total = int(tokens[chosen].sum())
    syn = int(tokens[chosen][synthetic[chosen]].sum())
    assert total <= budget
    assert budget - total < 2 * tokens.max()  # each side stops within one document of its target
    assert abs(syn - fraction * budget) < tokens.max()
    assert len(set(chosen.tolist())) == chosen.size


def test_fraction_without_budget_takes_the_limiting_side_whole() -> None:
    synthetic, tokens = _inputs(n_web=600, n_syn=100)
    plan = plan_mix(synthetic, tokens, MixConfig(synthetic_fraction=0.5))
    assert plan.selected["synthetic"]["documents"] == 100  # synthetic runs out first: all of it
    web, syn = plan.selected["web"]["tokens"], plan.selected["synthetic"]["tokens"]
    assert abs(web - syn) < tokens.max()


def test_budget_in_documents_without_tokens() -> None:
    synthetic, _ = _inputs()
    plan = plan_mix(synthetic, None, MixConfig(unit="documents", budget=250, synthetic_fraction=0.2))
    assert plan.n_rows == 250
    assert int(synthetic[plan.order].sum()) == 50
    assert plan.selected["web"]["tokens"] is None


def test_validation_split_size_and_cap() -> None:
    synthetic, tokens = _inputs()
    assert plan_mix(synthetic, tokens, MixConfig(validation_fraction=0.05)).n_validation == 50
    assert (
        plan_mix(synthetic, tokens, MixConfig(validation_fraction=0.05, validation_max_documents=20)).n_validation == 20
    )


def test_budget_over_available_fails_naming_the_fix() -> None:
    synthetic, tokens = _inputs()
    have = int(tokens.sum())
    with pytest.raises(ConfigError) as err:
        plan_mix(synthetic, tokens, MixConfig(budget=have + 1))
    assert (
        str(err.value)
        == f"release.mix.budget={have + 1} tokens, but the inputs hold {have} tokens. Fix: lower release.mix.budget, or set it to 0 for everything"  # noqa: E501
    )


def test_fraction_without_synthetic_fails_naming_the_fix() -> None:
    synthetic, tokens = _inputs(n_syn=0)
    with pytest.raises(ConfigError) as err:
        plan_mix(synthetic, tokens, MixConfig(synthetic_fraction=0.3))
    assert str(err.value) == (
        "release.mix.synthetic_fraction=0.3 but there are no synthetic tokens. "
        "Fix: pass synthetic parts (curate release --synthetic PATH), or set release.mix.synthetic_fraction to null"
    )


def test_empty_synthetic_is_fine_by_default() -> None:
    synthetic, tokens = _inputs(n_syn=0)
    plan = plan_mix(synthetic, tokens, MixConfig())
    assert plan.n_rows == 600 and plan.selected["synthetic"]["documents"] == 0


def test_token_unit_needs_token_counts() -> None:
    with pytest.raises(ValueError) as err:
        ReleaseConfig(count_tokens=False, mix=MixConfig(budget=10))
    assert (
        "mix.unit is tokens but count_tokens is false; set release.count_tokens=true or release.mix.unit=documents"
        in str(err.value)
    )


def test_bucket_weights_drop_and_thin_the_low_buckets() -> None:
    n = 4000
    synthetic = np.zeros(n, dtype=bool)
    synthetic[-100:] = True
    buckets = np.arange(n) % 20
    buckets[-100:] = -1  # synthetic rows are unscored
    buckets[:50] = -1  # and some web rows too
    cfg = MixConfig(unit="documents", bucket_weights={0: 0, 1: 0, 2: 0.5})
    plan = plan_mix(synthetic, None, cfg, buckets)
    picked = buckets[plan.order]
    assert not np.isin(picked, [0, 1]).any()
    assert 0.35 < (picked == 2).sum() / (buckets == 2).sum() < 0.65
    assert (picked == 19).sum() == (buckets == 19).sum() and (picked == -1).sum() == 150
    assert plan_mix(synthetic, None, cfg, buckets).order.tolist() == plan.order.tolist()
    # Without weights the plan is the one it always was (its own generator draws the buckets).
    assert (
        plan_mix(synthetic, None, MixConfig(unit="documents"), buckets).order.tolist()
        == plan_mix(synthetic, None, MixConfig(unit="documents")).order.tolist()
    )
    with pytest.raises(ConfigError) as err:
        plan_mix(synthetic, None, cfg, None)
    assert "Fix: run with quality.enabled=true, or remove release.mix.bucket_weights" in str(err.value)
    with pytest.raises(ValueError) as verr:
        MixConfig(bucket_weights={19: 10.5})
    assert (
        "release.mix.bucket_weights[19]=10.5: a weight is 0-10 (below 1 the share kept, above 1 the copies of each "
        "document). Fix: use a weight from 0 to 10, or lower the weights of the other buckets"
    ) in str(verr.value)
    assert MixConfig(bucket_weights={19: 10}).repeats and not cfg.repeats


def _old_plan(synthetic: np.ndarray, cfg: MixConfig, buckets: np.ndarray) -> tuple[list[int], int]:
    """The mix before weights above 1 existed, by documents without a budget: one keep draw
    per row from its own generator, then web, synthetic and interleaving permutations."""
    weight = np.ones(21)
    for b, w in cfg.bucket_weights.items():
        weight[b] = w
    keep = np.random.default_rng([cfg.seed, 1]).random(synthetic.size) < weight[buckets]
    rng = np.random.default_rng(cfg.seed)
    web = rng.permutation(np.flatnonzero(~synthetic & keep))
    syn = rng.permutation(np.flatnonzero(synthetic))
    order = rng.permutation(np.concatenate([web, syn]))
    return order.tolist(), int(round(order.size * cfg.validation_fraction))


def _bucketed(n: int = 4000, n_syn: int = 200) -> tuple[np.ndarray, np.ndarray]:
    synthetic = np.zeros(n, dtype=bool)
    synthetic[-n_syn:] = True
    buckets = np.arange(n) % 20
    buckets[-n_syn:] = -1
    return synthetic, buckets


@pytest.mark.parametrize("weights", [{0: 0, 1: 0, 2: 0.5}, {19: 1, 7: 0.25}, {5: 0}])
def test_weights_up_to_one_draw_exactly_as_before(weights: dict[int, float]) -> None:
    synthetic, buckets = _bucketed()
    cfg = MixConfig(unit="documents", bucket_weights=weights, seed=4, validation_fraction=0.1)
    plan = plan_mix(synthetic, None, cfg, buckets)
    assert (plan.order.tolist(), plan.n_validation) == _old_plan(synthetic, cfg, buckets)
    assert plan.copies is None and "rows" not in plan.selected["web"]


def test_weights_above_one_repeat_each_document_k_times_plus_one_with_probability_f() -> None:
    synthetic, buckets = _bucketed()
    cfg = MixConfig(unit="documents", bucket_weights={19: 3, 18: 2.5, 0: 0}, seed=7)
    plan = plan_mix(synthetic, None, cfg, buckets)
    times = np.bincount(plan.order, minlength=synthetic.size)
    assert set(times[buckets == 19]) == {3}
    assert set(times[buckets == 18]) == {2, 3} and 0.4 < (times[buckets == 18] == 3).mean() < 0.6
    assert set(times[buckets == 0]) == {0}
    assert set(times[(buckets > 0) & (buckets < 18)]) == {1} and set(times[synthetic]) == {1}
    # Copies are numbered 0, 1, ... in release order.
    for row in np.flatnonzero(buckets == 18)[:50]:
        assert plan.copies[plan.order == row].tolist() == list(range(times[row]))
    assert plan.selected["web"]["documents"] == int((times[~synthetic] > 0).sum())
    assert plan.selected["web"]["rows"] == int(times[~synthetic].sum()) == plan.n_rows - 200
    # The same config gives the same plan; another seed another.
    again = plan_mix(synthetic, None, cfg, buckets)
    assert again.order.tolist() == plan.order.tolist() and again.copies.tolist() == plan.copies.tolist()
    other = plan_mix(synthetic, None, cfg.model_copy(update={"seed": 8}), buckets)
    assert other.order.tolist() != plan.order.tolist()


def test_repeats_never_leak_into_validation_and_are_spread_through_train() -> None:
    synthetic, buckets = _bucketed()
    cfg = MixConfig(unit="documents", bucket_weights={19: 4, 18: 3, 17: 2.5}, validation_fraction=0.1)
    plan = plan_mix(synthetic, None, cfg, buckets)
    validation, train = plan.order[: plan.n_validation], plan.order[plan.n_validation :]
    distinct = np.unique(plan.order).size
    assert plan.n_validation == round(distinct * 0.1)
    assert np.unique(validation).size == validation.size  # each validation document once
    assert not np.isin(validation, train).any()  # and none of them has a copy in train
    assert set(plan.copies[: plan.n_validation]) == {0}
    # The extra copies of validation documents are left out, and counted.
    whole = plan_mix(synthetic, None, cfg.model_copy(update={"validation_fraction": 0}), buckets)
    copies = np.bincount(whole.order, minlength=synthetic.size)  # the same draws: copies per row
    assert plan.validation_copies_dropped == int(copies[validation].sum() - validation.size) > 0
    assert plan.n_rows == whole.n_rows - plan.validation_copies_dropped
    # Copies of a train document are spread: the gap between consecutive copies is about the
    # train size over the copies (a uniform shuffle), and copies are rarely neighbours.
    position = np.arange(train.size)
    gaps = []
    for row in np.unique(train[plan.copies[plan.n_validation :] > 0]):
        gaps += np.diff(position[train == row]).tolist()
    gaps = np.array(gaps)
    assert (gaps == 1).mean() < 0.01
    assert np.median(gaps) > train.size / 8


def test_budgets_and_synthetic_fraction_count_the_copies() -> None:
    synthetic, buckets = _bucketed()
    tokens = np.random.default_rng(1).integers(50, 2000, size=synthetic.size)
    weights = {19: 3, 18: 2, 0: 0}
    by_docs = plan_mix(synthetic, None, MixConfig(unit="documents", budget=2500, bucket_weights=weights), buckets)
    assert by_docs.n_rows == 2500  # rows, copies included: what the trainer reads
    by_tokens = plan_mix(
        synthetic, tokens, MixConfig(budget=1_500_000, synthetic_fraction=0.1, bucket_weights=weights), buckets
    )
    web = by_tokens.order[~synthetic[by_tokens.order]]
    syn = by_tokens.order[synthetic[by_tokens.order]]
    assert by_tokens.selected["web"]["tokens"] == int(tokens[web].sum()) <= 1_350_000
    assert by_tokens.selected["synthetic"]["tokens"] == int(tokens[syn].sum()) <= 150_000
    assert int(tokens[web].sum()) > 1_340_000 and int(tokens[syn].sum()) > 148_000
    # A document goes in with all its copies, or not at all: the weights hold within a budget.
    times = np.bincount(web, minlength=synthetic.size)
    assert set(times[buckets == 19]) <= {0, 3} and set(times[buckets == 18]) <= {0, 2}
    with pytest.raises(ConfigError) as err:
        plan_mix(synthetic, None, MixConfig(unit="documents", budget=10_000, bucket_weights=weights), buckets)
    # 17 buckets x 190 + 3 x 190 (bucket 19) + 2 x 190 (bucket 18) + 200 synthetic
    assert str(err.value) == (
        "release.mix.budget=10000 documents, but the inputs hold 4380 documents. Fix: lower release.mix.budget, or "
        "set it to 0 for everything"
    )
