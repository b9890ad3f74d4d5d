"""The compute arithmetic, checked against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from model.gpt import GPTConfig, preset
from model.config import load_train_config
from model.plan import (budget_to_flops, count_params, flops_per_token, mfu, plan_budget, plan_config, plan_run,
                        shape_for_params, tokens_per_param)


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


# --- --max-seconds alone: the plan for a time budget on a device. ---

def test_three_cpu_minutes_plan_the_measured_tinyshakespeare_shape():
    # One core's ~94 GFLOP/s fp32 for 180 s, a 1,024-token vocabulary: the hand-searched config
    # (model/configs/tinyshakespeare_cpu.toml) was 3 layers x 128, context 128, batch 16, lr 3e-3.
    plan = plan_run(180, 94e9, "cpu", vocab_size=1024, train_tokens=421_853)
    f = plan.fields
    assert f["model"]["n_embd"] == 128 and f["model"]["n_layer"] in (2, 3) and f["model"]["block_size"] == 128
    assert (f["batch_size"], f["grad_accum"], f["lr"]) == (16, 1, 3e-3)
    cfg = load_train_config(None, **f)  # a valid training config
    assert cfg.gpt_config(1024).n_head == 2


def test_an_hour_on_an_h100_plans_a_gpt2_small_class_run():
    plan = plan_run(3600, 989.4e12, "cuda", vocab_size=50_257, train_tokens=9_000_000_000)
    f, cfg = plan.fields, plan.config
    assert 80e6 < count_params(cfg) < 160e6 and 10 <= cfg.n_layer <= 14 and cfg.head_dim == 64
    assert f["model"]["block_size"] == 1024
    assert f["batch_size"] * f["grad_accum"] * 1024 == 65_536  # 64 sequences a step, 32 per forward
    assert 4e-4 <= f["lr"] <= 7e-4  # GPT-3's 6e-4 at this size
    assert "20.0 tokens per parameter" in plan.reasons[1]


def test_more_time_buys_a_bigger_model_and_a_longer_context():
    short, long = (plan_run(s, 94e9, "cpu", 1024, 421_853).config for s in (60, 6 * 3600))
    assert count_params(long) > 4 * count_params(short) and long.block_size > short.block_size


def test_tokens_per_parameter_run_from_the_short_run_measurement_to_chinchilla():
    assert tokens_per_param(1e12) == pytest.approx(4.0) and tokens_per_param(1e20) == pytest.approx(20.0)
    assert 4.0 < tokens_per_param(1e15) < 20.0


def test_eight_gpus_plan_a_bigger_model_and_split_its_batch():
    one = plan_run(3600, 989.4e12, "cuda", 50_257, 9_000_000_000)
    eight = plan_run(3600, 989.4e12, "cuda", 50_257, 9_000_000_000, world_size=8)
    assert count_params(eight.config) > 2 * count_params(one.config)
    f = eight.fields
    step_tokens = f["batch_size"] * f["grad_accum"] * 8 * f["model"]["block_size"]
    assert step_tokens >= 8 * f["model"]["block_size"] and step_tokens & (step_tokens - 1) == 0  # a power of two
    assert "8 x cuda" in eight.reasons[0]
