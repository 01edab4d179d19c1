"""Virtual batch normalisation (Salimans et al. 2016, Sec. 3.4; Goodfellow 2016, Sec. 4.2).

Batch norm makes each output depend on the other samples of its minibatch. VBN
normalises every example with the statistics of a *fixed reference batch*
chosen once, combined with the example itself: for the layer input x_i,

    mu_i  = (R mu_ref + m(x_i)) / (R + 1),   s_i = (R s_ref + m(x_i^2)) / (R + 1),
    y_i   = gamma (x_i - mu_i) / sqrt(s_i - mu_i^2 + eps) + beta,

where R is the reference batch size, mu_ref / s_ref are the mean and mean square
of the layer's input over the reference batch (and over positions, for feature
maps), and m() averages an example over positions. The reference statistics are
recomputed with the current weights at every call of the network (a forward pass
of the reference batch first; the reference batch itself is normalised with
its own statistics), and gradients flow through them. So an example's output
does not depend on the rest of its minibatch, and the cost is a second forward.

Wiring: a net built with ``norm: vbn`` keeps its reference input (z and labels
for a generator) in its first VBN layer, which saves it through ``state_dict``,
and gets a forward pre-hook that runs the reference pass (``attach_reference``,
called by ``ganforge.nets.build_net``). A game may set the reference batch explicitly
(``set_reference``); otherwise the network's first input batch becomes it.
"""

from __future__ import annotations

import torch
from torch import nn


class VirtualBatchNorm(nn.Module):
    """VBN for vectors (dims=1, (N, C)) or feature maps (dims=2, (N, C, H, W)); affine gamma, beta."""

    def __init__(self, channels: int, dims: int = 1, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels, self.dims, self.eps = channels, dims, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.reference_pass = False
        self._ref: tuple[torch.Tensor, torch.Tensor, int] | None = None
        self.reference = ReferenceBatch()  # used in a net's first VBN layer only

    def get_extra_state(self) -> dict:
        return self.reference.state()

    def set_extra_state(self, state: dict) -> None:
        if state:
            self.reference.set(state["x"], state.get("c"))

    def _shape(self, t: torch.Tensor) -> torch.Tensor:
        return t[:, :, None, None] if self.dims == 2 else t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = tuple(range(2, x.dim()))  # positions (H, W) of feature maps; () for vectors
        if self.reference_pass:
            mean = x.mean(dim=(0, *pos))
            meansq = x.pow(2).mean(dim=(0, *pos))
            self._ref = (mean, meansq, x.shape[0])
            mu, var = mean[None], (meansq - mean.pow(2))[None]
        else:
            if self._ref is None:
                raise RuntimeError("VirtualBatchNorm has no reference statistics: call the network itself "
                                   "(its forward runs the reference batch first), not a part of it")
            mean, meansq, r = self._ref
            own = x.mean(dim=pos) if pos else x                # (N, C)
            own_sq = x.pow(2).mean(dim=pos) if pos else x.pow(2)
            mu = (r * mean + own) / (r + 1)
            var = (r * meansq + own_sq) / (r + 1) - mu.pow(2)
        scale = self.weight[None] * torch.rsqrt(var.clamp_min(0) + self.eps)
        return (x - self._shape(mu)) * self._shape(scale) + self._shape(self.bias[None])

    def extra_repr(self) -> str:
        return f"{self.channels}, dims={self.dims}, eps={self.eps}"


class ReferenceBatch:
    """A net's VBN reference input (x, c); kept by its first VBN layer, saved through ``state_dict``."""

    def __init__(self) -> None:
        self.x: torch.Tensor | None = None
        self.c: torch.Tensor | None = None
        self.running = False

    def set(self, x: torch.Tensor, c: torch.Tensor | None = None) -> None:
        self.x = x.detach().clone()
        self.c = None if c is None else c.detach().clone()

    def state(self) -> dict:
        return {} if self.x is None else {"x": self.x, **({"c": self.c} if self.c is not None else {})}


def has_vbn(net: nn.Module) -> bool:
    return any(isinstance(m, VirtualBatchNorm) for m in net.modules())


def _layers(net: nn.Module) -> list[VirtualBatchNorm]:
    return [m for m in net.modules() if isinstance(m, VirtualBatchNorm)]


def reference_of(net: nn.Module) -> ReferenceBatch:
    """The reference batch of a net with VBN layers (held by its first one)."""
    layers = _layers(net)
    if not layers:
        raise ValueError("this network has no virtual batch norm layers")
    return layers[0].reference


def _pre_hook(net: nn.Module, args: tuple, kwargs: dict):
    ref = reference_of(net)
    if ref.running:
        return None
    x = args[0]
    c = args[1] if len(args) > 1 else kwargs.get("c")
    if ref.x is None:
        ref.set(x, c)
    layers = _layers(net)
    rx = ref.x.to(x.device)
    rc = None if ref.c is None else ref.c.to(x.device)
    ref.running = True
    for m in layers:
        m.reference_pass = True
    try:
        net(rx, rc) if rc is not None else net(rx)
    finally:
        ref.running = False
        for m in layers:
            m.reference_pass = False
    return None


def _post_hook(net: nn.Module, args: tuple, kwargs: dict, output):
    if not reference_of(net).running:
        for m in _layers(net):  # drop the statistics (and their graph) once the call is over
            m._ref = None
    return None


def attach_reference(net: nn.Module) -> nn.Module:
    """Give a net with VBN layers its reference batch holder and hooks; other nets pass through."""
    if has_vbn(net) and not getattr(net, "_vbn_hooked", False):
        net._vbn_hooked = True
        net.register_forward_pre_hook(_pre_hook, with_kwargs=True)
        net.register_forward_hook(_post_hook, with_kwargs=True, always_call=True)
    return net


def set_reference(net: nn.Module, x: torch.Tensor, c: torch.Tensor | None = None) -> None:
    """Fix the reference batch of a net built with ``norm: vbn`` (e.g. a seeded latent batch)."""
    reference_of(net).set(x, c)
