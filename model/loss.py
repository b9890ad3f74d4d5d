"""The output head and the cross-entropy loss in one pass, a slice of rows at a time.

With a 50k vocabulary the logits of one 16 x 1024 batch are 0.8 G numbers: 1.6 GB in bf16, 3.3 GB
again for the fp32 copy that an accurate softmax needs (autocast makes that copy for
`F.cross_entropy` too), and autograd keeps them until the backward pass. Here each slice of rows
gets its logits, its loss and, while the logits are at hand, the gradients of the hidden states and
of the head's weight; the slice's logits are then dropped. The same three matrix products as
autograd's path (forward, and two for the backward), none of the full-size tensors. The softmax is
computed in fp32 from bf16 products, as autocast does.
"""

from __future__ import annotations

import torch

# Logit elements per slice: 128 M fp32 = 512 MB at most. A small vocabulary is one slice.
SLICE_ELEMENTS = 2**27


def rows_per_slice(vocab_size: int) -> int:
    return max(128, SLICE_ELEMENTS // vocab_size // 128 * 128)


class LinearCrossEntropy(torch.autograd.Function):
    """mean over rows of cross_entropy(x @ weight.T, targets), gradients computed in the forward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        n_rows = x.size(0)
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        grad_w = torch.zeros_like(weight, dtype=torch.float32) if ctx.needs_input_grad[1] else None
        total = torch.zeros((), dtype=torch.float32, device=x.device)
        step = rows_per_slice(weight.size(0))
        for start in range(0, n_rows, step):
            xs, ys = x[start : start + step], targets[start : start + step]
            logits = (xs @ weight.t()).float()  # under autocast: a bf16 product, fp32 from here on
            lse = torch.logsumexp(logits, dim=-1)
            total += (lse - logits.gather(1, ys[:, None]).squeeze(1)).sum()
            if grad_x is None and grad_w is None:
                continue
            # d(mean loss)/d(logits) = (softmax - one_hot) / n_rows, built in place of the logits.
            grad_logits = logits.sub_(lse[:, None]).exp_()
            grad_logits.scatter_add_(1, ys[:, None], torch.full_like(lse[:, None], -1.0))
            grad_logits.div_(n_rows)
            if grad_x is not None:
                grad_x[start : start + step] = grad_logits @ weight
            if grad_w is not None:
                grad_w += grad_logits.t() @ xs
        ctx.save_for_backward(grad_x, grad_w)
        return total / n_rows

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        grad_x, grad_w = ctx.saved_tensors
        return (
            None if grad_x is None else grad_x * grad_loss.to(grad_x.dtype),
            None if grad_w is None else grad_w * grad_loss,
            None,
        )


def linear_cross_entropy(x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """x: (N, d) hidden states, weight: (V, d) output head, targets: (N,) ids -> mean loss (fp32)."""
    return LinearCrossEntropy.apply(x, weight, targets)
