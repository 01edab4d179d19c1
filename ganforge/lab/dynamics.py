"""``dynamics``: non-convergence of gradient play you can watch, and what fixes it.

Part (a), the bilinear game min_x max_y x y (the lectures' "min-max stationary point"):
the only equilibrium is (0, 0), and with step size eta

- simultaneous gradient descent-ascent, (x, y) <- (x - eta y, y + eta x), multiplies the
  distance to (0, 0) by sqrt(1 + eta^2) every step: it spirals out;
- alternating GDA (y uses the new x) is symplectic: it orbits on a bounded ellipse and never
  converges;
- extragradient (Korpelevich 1976: step from the gradient at a look-ahead point) and
  optimistic GDA (Daskalakis et al. 2018: x <- x - 2 eta grad_t + eta grad_{t-1}) contract:
  the distance shrinks geometrically.

Part (b), the Dirac-GAN of Mescheder et al. 2018 (Sec. 2.2): G's distribution is a point
mass at theta, D(x) = psi x on logits, the data a point mass at 0; the equilibrium is
(theta, psi) = (0, 0). With the paper's standard (zero-sum, 'minimax') loss, simultaneous
gradient descent spirals out and alternating gradient descent orbits (the Jacobian at the
equilibrium has eigenvalues +-i f'(0), Sec. 2.2 and Fig. 2); with the non-saturating ('ns')
G loss second-order terms damp the orbit, but it stalls far from (0, 0). R1 (gamma / 2 psi^2
here, eq. 9) makes both converge (Thm. 4.1). WGAN-GP (weight lambda, target norm 1) does not
reach the equilibrium (Sec. 3.2: "not always convergent"): the penalty's pull of |psi| towards
1 cancels theta, psi dies out at psi = 0+ and G stops at a theta != 0. Losses and penalties come
from ``ganforge.objectives`` and ``ganforge.penalties`` and are differentiated with autograd.
"""

from __future__ import annotations

import pathlib
import time

import numpy as np
import torch
from torch import nn

from ganforge.lab.common import figure, finish, lab, one_thread, seed_all

BILINEAR_METHODS = ("simultaneous", "alternating", "extragradient", "optimistic")


def bilinear(method: str, *, steps: int, eta: float = 0.1, start: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Iterates (steps + 1, 2) of ``method`` on f(x, y) = x y (x descends, y ascends)."""
    if method not in BILINEAR_METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(BILINEAR_METHODS)}")
    z = np.empty((steps + 1, 2))
    z[0] = start
    x, y = start
    gx_prev, gy_prev = y, x  # optimistic GDA starts as plain GDA
    for t in range(steps):
        if method == "simultaneous":
            x, y = x - eta * y, y + eta * x
        elif method == "alternating":
            x = x - eta * y
            y = y + eta * x
        elif method == "extragradient":
            xh, yh = x - eta * y, y + eta * x
            x, y = x - eta * yh, y + eta * xh
        else:
            gx, gy = y, x
            x, y = x - eta * (2 * gx - gx_prev), y + eta * (2 * gy - gy_prev)
            gx_prev, gy_prev = gx, gy
        z[t + 1] = x, y
    return z


class _LinearCritic(nn.Module):
    """D(x) = psi x (a logit), the Dirac-GAN's discriminator."""

    def __init__(self, psi: float) -> None:
        super().__init__()
        self.psi = nn.Parameter(torch.tensor(float(psi), dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.psi * x


def dirac_gan(*, objective: str, steps: int, eta: float = 0.1, alternating: bool = False,
              penalty: str | None = None, weight: float = 0.0,
              start: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Iterates (steps + 1, 2) of (theta, psi) for the Dirac-GAN with plain gradient steps.

    ``objective``: a ``ganforge.objectives`` name ('ns', 'wgan' with no clipping);
    ``penalty``: an optional ``ganforge.penalties`` name ('r1', 'gp') added to D's loss with
    ``weight``. Simultaneous: both gradients at the same point; alternating: D steps first.
    """
    from ganforge import objectives, penalties  # noqa: F401  (penalties registers 'r1', 'gp')
    from ganforge.registry import PENALTIES

    obj = objectives.get(objective, clip=None) if objective == "wgan" else objectives.get(objective)
    pen = PENALTIES.get(penalty)() if penalty else None
    d = _LinearCritic(start[1])
    theta = torch.tensor(float(start[0]), dtype=torch.float64, requires_grad=True)
    real = torch.zeros(1, 1, dtype=torch.float64)
    out = np.empty((steps + 1, 2))
    out[0] = start

    def d_grad() -> torch.Tensor:
        fake = theta.detach().reshape(1, 1)
        loss = obj.d_loss(real=d(real), fake=d(fake))
        if pen is not None:
            loss = loss + weight * pen(d, real=real, fake=fake)
        (g,) = torch.autograd.grad(loss, d.psi)
        return g

    def g_grad() -> torch.Tensor:
        (g,) = torch.autograd.grad(obj.g_loss(fake=d(theta.reshape(1, 1))), theta)
        return g

    for t in range(steps):
        if alternating:
            gd = d_grad()
            with torch.no_grad():
                d.psi -= eta * gd
            gg = g_grad()
        else:
            gd, gg = d_grad(), g_grad()
            with torch.no_grad():
                d.psi -= eta * gd
        with torch.no_grad():
            theta -= eta * gg
        out[t + 1] = float(theta.detach()), float(d.psi.detach())
    return out


DIRAC_RUNS = {  # label -> dirac_gan keyword arguments
    "GAN (minimax), simultaneous": {"objective": "minimax"},
    "GAN (minimax), alternating": {"objective": "minimax", "alternating": True},
    "GAN (ns), simultaneous": {"objective": "ns"},
    "GAN (ns) + R1 (gamma=1), simultaneous": {"objective": "ns", "penalty": "r1", "weight": 1.0},
    "GAN (minimax) + R1 (gamma=1), alternating": {"objective": "minimax", "penalty": "r1", "weight": 1.0,
                                                  "alternating": True},
    "WGAN-GP (lambda=1), simultaneous": {"objective": "wgan", "penalty": "gp", "weight": 1.0},
}


def _dist(z: np.ndarray) -> np.ndarray:
    return np.hypot(z[:, 0], z[:, 1])


@lab("dynamics")
def run(*, out: pathlib.Path, quick: bool, seed: int = 0) -> dict:
    """Bilinear game (GDA spirals out, extragradient/optimistic converge) and the Dirac-GAN with R1 / WGAN-GP."""
    t0 = time.perf_counter()
    seed_all(seed)  # only WGAN-GP's interpolation draws random numbers (and its gradient ignores them)
    eta = 0.1
    b_steps = 200 if quick else 500
    d_steps = 600 if quick else 2000
    bil = {m: bilinear(m, steps=b_steps, eta=eta) for m in BILINEAR_METHODS}
    with one_thread():
        dirac = {k: dirac_gan(steps=d_steps, eta=eta, **kw) for k, kw in DIRAC_RUNS.items()}
    bd = {m: _dist(z) for m, z in bil.items()}
    dd = {k: _dist(z) for k, z in dirac.items()}
    tail = max(d_steps // 10, 1)
    result = {
        "eta": eta, "bilinear_steps": b_steps, "dirac_steps": d_steps, "start": [1.0, 1.0],
        "bilinear_start_distance": float(bd["simultaneous"][0]),
        "bilinear_final_distance": {m: float(v[-1]) for m, v in bd.items()},
        "bilinear_max_distance": {m: float(v.max()) for m, v in bd.items()},
        "bilinear_min_distance_last_half": {m: float(v[b_steps // 2:].min()) for m, v in bd.items()},
        "simultaneous_growth_per_step": float((bd["simultaneous"][-1] / bd["simultaneous"][0]) ** (1 / b_steps)),
        "simultaneous_growth_theory": float(np.sqrt(1 + eta**2)),
        "dirac_final_distance": {k: float(v[-1]) for k, v in dd.items()},
        "dirac_min_distance_last_10pct": {k: float(v[-tail:].min()) for k, v in dd.items()},
        "dirac_final_point": {k: z[-1] for k, z in dirac.items()},
        "bilinear_distance": bd, "dirac_distance": dd,
    }

    fig, axes = figure(2, 2, width=4.6, height=3.9)
    for m, z in bil.items():
        axes[0].plot(z[:, 0], z[:, 1], lw=0.8, label=m)
        axes[1].semilogy(bd[m], label=m)
    axes[0].plot(0, 0, "k*", ms=9)
    axes[0].set_xlim(-4, 4)
    axes[0].set_ylim(-4, 4)
    axes[0].set_xlabel("x (minimises xy)")
    axes[0].set_ylabel("y (maximises xy)")
    axes[0].set_title(f"min_x max_y xy, eta={eta}: trajectories from (1, 1)", fontsize=9)
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel("step")
    axes[1].set_title("distance to the equilibrium (0, 0)", fontsize=9)
    axes[1].legend(fontsize=7)
    for k, z in dirac.items():
        axes[2].plot(z[:, 0], z[:, 1], lw=0.8, label=k)
        axes[3].semilogy(np.maximum(dd[k], 1e-16), label=k)
    axes[2].plot(0, 0, "k*", ms=9)
    axes[2].set_xlabel("theta (generator: p_g = delta_theta)")
    axes[2].set_ylabel("psi (discriminator: D(x) = psi x)")
    axes[2].set_title("Dirac-GAN (Mescheder et al. 2018), data at 0", fontsize=9)
    axes[2].legend(fontsize=6)
    axes[3].set_xlabel("step")
    axes[3].set_title("Dirac-GAN: distance to (theta, psi) = (0, 0)", fontsize=9)
    axes[3].legend(fontsize=6)
    return finish(out, "dynamics", fig, result, t0)
