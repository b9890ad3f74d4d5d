"""The compute arithmetic, checked against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from model.gpt import GPTConfig, preset
from model.config import load_train_config
from model.plan import budget_to_flops, count_params, flops_per_token, mfu, plan_budget, plan_config, shape_for_params


def test_gpt2_small_parameters_and_flops_by_hand():
    cfg = preset("124M")  # V=50304, d=768, L=12, SwiGLU hidden 2048, T=1024
    per_layer = 768 * 2304 + 768 * 768 + 3 * 768 * 2048 + 2 * 768  # qkv, proj, SwiGLU, 2 norms
    assert per_layer == 7_079_424
    assert count_params(cfg) == 12 * per_layer + 768 + 50304 * 768 == 123_587_328
    # 6 N plus attention's 12 L d T
    assert flops_per_token(cfg) == 6 * 123_587_328 + 12 * 12 * 768 * 1024 == 854_770_176


def test_grouped_query_attention_shrinks_only_k_and_v():
    mha = GPTConfig(vocab_size=64, n_layer=1, n_head=8, n_embd=512)
    gqa = GPTConfig(vocab_size=64, n_layer=1, n_head=8, n_kv_head=2, n_embd=512)
    assert count_params(mha) - count_params(gqa) == 512 * (8 - 2) * 2 * 64


def test_mfu_is_achieved_flops_over_peak():
    cfg = preset("124M")
    assert mfu(10_000, cfg, peak_flops=854_770_176 * 20_000) == pytest.approx(0.5)


def test_budget_in_dollars_becomes_flops_through_hours_peak_and_mfu():
    # $1,000 at $2/GPU-hour = 500 GPU-hours; 500 * 3600 s * 1e15 FLOP/s * 0.4 = 7.2e20 FLOPs.
    assert budget_to_flops(dollars=1000, price_per_gpu_hour=2.0, peak_flops=1e15, mfu=0.4) == pytest.approx(7.2e20)
    assert budget_to_flops(gpu_hours=500, peak_flops=1e15, mfu=0.4) == pytest.approx(7.2e20)
    assert budget_to_flops(flops=3e18) == 3e18


@pytest.mark.parametrize("bad", [{}, {"flops": 1e18, "gpu_hours": 1.0}, {"dollars": 10.0}, {"gpu_hours": 1.0}, {"flops": -1.0}])
def test_a_budget_that_is_not_exactly_one_positive_amount_is_refused(bad):
    with pytest.raises(ValueError):
        budget_to_flops(**bad)


def test_chinchilla_sizing_by_hand():
    # C = 6 N D, D = 20 N  =>  N = sqrt(C / 120). C = 1.2e20 gives N = 1e9 and D = 2e10.
    plan = plan_budget(1.2e20)
    assert plan.n_params_target == pytest.approx(1e9)
    assert plan.n_tokens_target == pytest.approx(2e10)
    # The buildable shape lands within a few percent of N and spends the whole budget.
    assert plan.n_params == pytest.approx(1e9, rel=0.05)
    assert plan.n_tokens * flops_per_token(plan.config) == pytest.approx(1.2e20, rel=1e-6)
    assert 15 < plan.tokens_per_param < 21  # 20, less what attention's FLOPs take


def test_planned_shapes_keep_64_wide_heads_and_a_gpt2_like_aspect():
    cfg = shape_for_params(124e6, preset("124M"))
    assert cfg.n_embd == 64 * cfg.n_head
    assert 32 <= cfg.n_embd / cfg.n_layer <= 128
    assert count_params(cfg) == pytest.approx(124e6, rel=0.05)


def test_a_bigger_budget_buys_a_bigger_model_and_more_tokens():
    small, large = plan_budget(1e17), plan_budget(1e19)
    assert large.n_params > small.n_params and large.n_tokens > small.n_tokens
    assert large.n_params_target / small.n_params_target == pytest.approx(math.sqrt(100))


def test_the_planned_config_loads_as_a_training_config_of_that_shape():
    plan = plan_budget(1e19)
    cfg = load_train_config(None, **plan_config(plan))
    built = cfg.gpt_config(vocab_size=plan.config.vocab_size)
    assert (built.n_layer, built.n_embd, built.n_head) == (plan.config.n_layer, plan.config.n_embd, plan.config.n_head)
    assert cfg.max_tokens == plan.n_tokens
