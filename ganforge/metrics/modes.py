"""Mode-collapse diagnostics on toy data (VEEGAN / PacGAN protocol) and 1D density gaps.

2D mixtures: each sample goes to its nearest mode centre by std-normalised
distance; it is high quality (HQ) if that distance is < 3; a mode is covered if
it holds at least one HQ sample. ``rkl`` is KL(generated mode histogram ||
uniform) over the HQ samples, as in PacGAN (0 when every mode is equally hit).
"""

from __future__ import annotations

import math

import numpy as np
import torch


def mode_metrics(samples: torch.Tensor, means: torch.Tensor, std: float | torch.Tensor,
                 threshold: float = 3.0) -> dict[str, float]:
    """samples (N, d), means (K, d) -> {modes, hq, rkl}."""
    x = torch.as_tensor(samples, dtype=torch.float64).reshape(len(samples), -1)
    mu = torch.as_tensor(means, dtype=torch.float64)
    std_t = torch.as_tensor(std, dtype=torch.float64)
    d = torch.cdist(x, mu) / (std_t if std_t.dim() == 0 else std_t[None, :])
    dist, idx = d.min(dim=1)
    finite = torch.isfinite(dist)
    hq = (dist < threshold) & finite
    k = mu.shape[0]
    counts = torch.bincount(idx[hq], minlength=k).double()
    n_hq = counts.sum().item()
    if n_hq > 0:
        p = counts / n_hq
        nz = p > 0
        rkl = float((p[nz] * torch.log(p[nz] * k)).sum())
    else:
        rkl = math.inf
    return {"modes": int((counts > 0).sum()), "hq": float(hq.double().mean()), "rkl": rkl}


def density_gap_1d(samples: torch.Tensor, log_prob, *, bins: int = 200, lo: float | None = None,
                   hi: float | None = None) -> dict[str, float]:
    """KL(p || q_hat) and JS(p, q_hat) between a 1D density p and the histogram q_hat of samples.

    The histogram is smoothed with a small floor (1e-10 of a bin's mass) so that KL stays finite;
    both quantities are computed on the same bins (midpoint rule).
    """
    s = torch.as_tensor(samples, dtype=torch.float64).reshape(-1).numpy()
    s = s[np.isfinite(s)]
    lo = float(np.quantile(s, 0.001)) if lo is None else lo
    hi = float(np.quantile(s, 0.999)) if hi is None else hi
    edges = np.linspace(lo, hi, bins + 1)
    width = edges[1] - edges[0]
    mids = 0.5 * (edges[1:] + edges[:-1])
    p = torch.as_tensor(log_prob(torch.as_tensor(mids[:, None]))).exp().numpy().reshape(-1) * width
    q, _ = np.histogram(s, bins=edges)
    q = q / max(len(s), 1)
    p = p / p.sum()
    q = (q + 1e-10) / (q + 1e-10).sum()
    m = 0.5 * (p + q)
    kl = float(np.sum(np.where(p > 0, p * np.log(np.maximum(p, 1e-300) / q), 0.0)))
    js = 0.5 * float(np.sum(np.where(p > 0, p * np.log(np.maximum(p, 1e-300) / m), 0.0))) + \
        0.5 * float(np.sum(q * np.log(q / m)))
    return {"kl": kl, "js": js}
