"""A compact decoder-only transformer, the whole model in one file (its loss in model/loss.py).

Pre-norm blocks: RMSNorm -> causal self-attention with rotary positions -> residual, RMSNorm ->
SwiGLU MLP -> residual; a final RMSNorm and an output head that shares its weight with the token
embedding. No biases anywhere. Attention goes through `F.scaled_dot_product_attention`, which picks
a fused kernel (flash attention on CUDA, a blocked kernel on CPU) instead of materialising the
T x T score matrix. `GPTConfig` holds every shape choice; `PRESETS` names the shapes we ship.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from model.loss import linear_cross_entropy


@dataclass(frozen=True)
class GPTConfig:
    """Shape of a model. `vocab_size` is normally overwritten by the token files' vocabulary."""

    vocab_size: int = 50_304  # GPT-2's 50,257 padded to a multiple of 64, as nanoGPT does
    block_size: int = 1024  # longest context the rotary tables are built for
    n_layer: int = 12
    n_head: int = 12
    n_kv_head: int | None = None  # fewer than n_head = grouped-query attention; None = n_head
    n_embd: int = 768
    mlp_hidden: int | None = None  # None = 8/3 * n_embd to the nearest 64: about the 4x GELU MLP's size
    dropout: float = 0.0
    rope_base: float = 10_000.0
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}")
        if (self.n_embd // self.n_head) % 2:
            raise ValueError(f"head size {self.n_embd // self.n_head} must be even for rotary embedding")
        if self.n_head % self.kv_heads:
            raise ValueError(f"n_head {self.n_head} is not a multiple of n_kv_head {self.kv_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout {self.dropout} is outside [0, 1)")

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def hidden(self) -> int:
        return self.mlp_hidden or max(64, 64 * round(8 * self.n_embd / 3 / 64))

    def to_dict(self) -> dict:
        return asdict(self)


# Named shapes. The large ones are GPT-2's shapes, so their sizes are comparable with published runs
# (124M and ~51M parameters at GPT-2's vocabulary). "small" is the shape that learned tinyshakespeare
# best in 180 s on one CPU core (model/configs/tinyshakespeare_cpu.toml): at that budget 3 layers tied
# 2 and beat 4 and 5, and 64-wide heads train 1.25x faster than 32-wide ones. "tiny" runs tests in seconds.
PRESETS: dict[str, GPTConfig] = {
    "tiny": GPTConfig(vocab_size=512, block_size=64, n_layer=2, n_head=2, n_embd=64),
    "small": GPTConfig(vocab_size=1024, block_size=128, n_layer=3, n_head=2, n_embd=128),
    "50M": GPTConfig(block_size=1024, n_layer=8, n_head=8, n_embd=512),
    "124M": GPTConfig(block_size=1024, n_layer=12, n_head=12, n_embd=768),
}


def preset(name: str, **overrides) -> GPTConfig:
    """The named preset with some fields replaced; unknown names list the known ones."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)


class Rotary(nn.Module):
    """Rotary position embedding (RoFormer): turns each pair of a head's channels by an angle
    proportional to the token's position, so that q.k depends only on the distance between tokens."""

    def __init__(self, head_dim: int, max_len: int, base: float):
        super().__init__()
        inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)[:, None, :]  # (T, 1, D/2)
        # Not persistent: the tables are a function of the config, so checkpoints need not carry them.
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, heads, head_dim) -> the same shape, each position turned by its angles, in x's
        own dtype: under autocast that is bf16, and no fp32 copy of q and k is made."""
        T = x.size(1)
        cos, sin = self.cos[:T], self.sin[:T]
        pairs = x.unflatten(-1, (-1, 2))
        if x.dtype == torch.float32 and not torch.compiler.is_compiling():
            # fp32, eagerly (the CPU path): one complex multiplication is about twice as fast, forward
            # and backward, as the four real products and the stack. Complex numbers have no bf16
            # form, and the compiler generates no code for them.
            return torch.view_as_real(torch.view_as_complex(pairs) * torch.complex(cos, sin)).flatten(-2)
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        re, im = pairs.unbind(-1)
        return torch.stack((re * cos - im * sin, re * sin + im * cos), dim=-1).flatten(-2)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = cfg.n_head, cfg.kv_heads, cfg.head_dim
        # One matmul for q, k and v: fewer, larger kernels are faster than three small ones.
        self.qkv = nn.Linear(cfg.n_embd, (cfg.n_head + 2 * cfg.kv_heads) * cfg.head_dim, bias=False)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.rotary = Rotary(cfg.head_dim, cfg.block_size, cfg.rope_base)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        H, KV, D = self.n_head, self.n_kv_head, self.head_dim
        qk, v = self.qkv(x).split([(H + KV) * D, KV * D], dim=-1)
        # q and k sit side by side in the projection's output, so one call rotates both.
        q, k = self.rotary(qk.view(B, T, H + KV, D)).split([H, KV], dim=2)
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.view(B, T, KV, D).transpose(1, 2),
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=True,
            enable_gqa=KV != H,
        )
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class SwiGLU(nn.Module):
    """SwiGLU(x) = Swish(x W1) * (x W2), then the down projection (Shazeer 2020)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.hidden = cfg.hidden
        self.up = nn.Linear(cfg.n_embd, 2 * cfg.hidden, bias=False)  # W1 and W2 side by side: one matmul
        self.down = nn.Linear(cfg.hidden, cfg.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.up(x).split(self.hidden, dim=-1)
        return self.down(F.silu(gate) * value)


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.attn_norm = nn.RMSNorm(cfg.n_embd, eps=cfg.norm_eps)
        self.attn = CausalSelfAttention(cfg)
        self.mlp_norm = nn.RMSNorm(cfg.n_embd, eps=cfg.norm_eps)
        self.mlp = SwiGLU(cfg)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.attn_norm(x)))
        return x + self.dropout(self.mlp(self.mlp_norm(x)))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.dropout = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = nn.RMSNorm(cfg.n_embd, eps=cfg.norm_eps)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.head.weight = self.embed.weight  # tied: one matrix reads tokens in and writes them out
        self.apply(self._init_weights)
        # GPT-2's depth scaling: each block adds two residual contributions, so the projections that
        # write into the residual stream start smaller, keeping its variance flat with depth.
        for name, p in self.named_parameters():
            if name.endswith(("attn.proj.weight", "mlp.down.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def n_params(self, non_embedding: bool = False) -> int:
        """Parameters, counting the tied embedding/head matrix once (or not at all)."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.embed.weight.numel() if non_embedding else n

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, all_logits: bool = False
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """idx: (B, T) token ids. With targets (B, T): (None, the mean cross-entropy), computed with
        the output head a slice of rows at a time (model/loss.py), so the (B, T, V) logits are never
        held. Without: the logits of the last position, (B, 1, V), all sampling needs; or of every
        position with all_logits."""
        if idx.size(1) > self.cfg.block_size:
            raise ValueError(f"sequence of {idx.size(1)} tokens is longer than block_size {self.cfg.block_size}")
        x = self.dropout(self.embed(idx))
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        if targets is not None:
            return None, linear_cross_entropy(x.flatten(0, 1), self.head.weight, targets.flatten())
        return self.head(x if all_logits else x[:, -1:, :]), None
