"""Lambert W on the principal branch, in torch, differentiable, for large arguments.

The Jeffrey conjugate needs W(e^s) for s in a wide range (e^s overflows float32
long before s does), so the function here takes s = log x and solves
w + log w = s by Newton's method in float64. dW/ds = W / (1 + W).
"""

from __future__ import annotations

import torch


def _solve(s: torch.Tensor, iters: int = 50) -> torch.Tensor:
    s = s.double()
    # Start: w ~ e^s for very negative s, w ~ s - log s for large s.
    w = torch.where(s < 1.0, torch.exp(s).clamp_min(1e-300), s - torch.log(s.clamp_min(1.0)))
    w = w.clamp_min(1e-300)
    for _ in range(iters):
        lw = torch.log(w)
        # Newton on h(w) = w + log w - s, h' = 1 + 1/w  ->  step = w (w + log w - s) / (w + 1)
        step = w * (w + lw - s) / (w + 1.0)
        w_new = (w - step).clamp_min(w * 1e-3)
        if torch.allclose(w_new, w, rtol=1e-15, atol=0):
            w = w_new
            break
        w = w_new
    return w


class _LambertWExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, s):
        w = _solve(s).to(s.dtype)
        ctx.save_for_backward(w)
        return w

    @staticmethod
    def backward(ctx, grad):
        (w,) = ctx.saved_tensors
        return grad * w / (1 + w)


def lambertw_exp(s: torch.Tensor) -> torch.Tensor:
    """W(exp(s)), elementwise; differentiable in s."""
    return _LambertWExp.apply(s)


def lambertw(x: torch.Tensor) -> torch.Tensor:
    """W(x) for x > 0 (principal branch)."""
    return lambertw_exp(torch.log(x))


class _WPlusInvW(torch.autograd.Function):
    """h(s) = W(e^s) + 1/W(e^s), with dh/ds = 1 - 1/W (finite where 1/W^2 would overflow)."""

    @staticmethod
    def forward(ctx, s):
        w = _solve(s)
        ctx.save_for_backward(w)
        return (w + 1.0 / w).to(s.dtype)

    @staticmethod
    def backward(ctx, grad):
        (w,) = ctx.saved_tensors
        return grad * (1.0 - 1.0 / w).to(grad.dtype)


def w_plus_inv_w_exp(s: torch.Tensor) -> torch.Tensor:
    return _WPlusInvW.apply(s)
