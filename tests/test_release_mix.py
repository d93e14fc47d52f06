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
        MixConfig(bucket_weights={19: 2.0})
    assert "Fix: to favour the top buckets, lower the weights of the others" in str(verr.value)
