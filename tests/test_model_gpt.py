"""The model: causal, shaped as its config says, initialised for depth, tied embedding."""

from __future__ import annotations

import math

import pytest
import torch

from model.gpt import GPT, PRESETS, GPTConfig, preset
from model.plan import count_params

TINY = GPTConfig(vocab_size=96, block_size=32, n_layer=2, n_head=4, n_embd=64)


def _logits(model: GPT, idx: torch.Tensor) -> torch.Tensor:
    logits, _ = model(idx, all_logits=True)
    return logits


@pytest.mark.parametrize("cfg", [TINY, GPTConfig(**{**TINY.to_dict(), "n_kv_head": 1})], ids=["mha", "gqa"])
def test_changing_future_tokens_never_changes_earlier_logits(cfg):
    torch.manual_seed(0)
    model = GPT(cfg).eval()
    idx = torch.randint(cfg.vocab_size, (3, cfg.block_size))
    for cut in (1, 7, cfg.block_size - 1):
        changed = idx.clone()
        changed[:, cut:] = torch.randint(cfg.vocab_size, changed[:, cut:].shape)
        before, after = _logits(model, idx), _logits(model, changed)
        torch.testing.assert_close(after[:, :cut], before[:, :cut], rtol=0, atol=1e-6)
        assert not torch.allclose(after[:, cut:], before[:, cut:])  # the later positions did see the change


def test_output_head_is_the_token_embedding():
    model = GPT(TINY)
    assert model.head.weight is model.embed.weight
    assert model.n_params() == sum(p.numel() for p in model.parameters())


def test_no_parameter_is_a_bias():
    assert all(not name.endswith("bias") for name, _ in GPT(TINY).named_parameters())


def test_residual_projections_start_smaller_with_depth():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=64, block_size=16, n_layer=8, n_head=4, n_embd=256)
    model = GPT(cfg)
    expected = 0.02 / math.sqrt(2 * cfg.n_layer)
    assert model.blocks[0].attn.proj.weight.std().item() == pytest.approx(expected, rel=0.05)
    assert model.blocks[0].mlp.down.weight.std().item() == pytest.approx(expected, rel=0.05)
    assert model.blocks[0].mlp.up.weight.std().item() == pytest.approx(0.02, rel=0.05)


def test_without_targets_only_the_last_position_is_returned():
    idx = torch.randint(TINY.vocab_size, (2, 10))
    logits, loss = GPT(TINY)(idx)
    assert logits.shape == (2, 1, TINY.vocab_size) and loss is None


def test_a_sequence_longer_than_the_context_is_refused():
    with pytest.raises(ValueError, match="block_size"):
        GPT(TINY)(torch.zeros(1, TINY.block_size + 1, dtype=torch.long))


@pytest.mark.parametrize("name", list(PRESETS))
def test_parameter_count_formula_matches_the_built_model(name):
    with torch.device("meta"):  # no memory for the large presets' weights
        model = GPT(PRESETS[name])
    assert count_params(PRESETS[name]) == model.n_params()


def test_gpt2_small_preset_has_gpt2_small_size():
    # 124M at GPT-2's padded vocabulary: the SwiGLU MLP at 8/3 width has the 4x GELU MLP's size.
    assert count_params(preset("124M")) == pytest.approx(124e6, rel=0.01)


def test_inconsistent_shapes_are_refused():
    with pytest.raises(ValueError, match="multiple of n_head"):
        GPTConfig(n_embd=100, n_head=3)
    with pytest.raises(ValueError, match="n_kv_head"):
        GPTConfig(n_head=12, n_kv_head=5)
    with pytest.raises(KeyError, match="known"):
        preset("huge")
