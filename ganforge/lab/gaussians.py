"""Closed-form divergences between Gaussians N(m0, S0) (= P) and N(m1, S1) (= Q).

Means are scalars or vectors; covariances are variances (scalars), vectors of
variances (diagonal) or full matrices. Everything is float64 numpy.

- KL(P||Q) = 1/2 [tr(S1^-1 S0) + d^T S1^-1 d - k + log det S1 / det S0]   (d = m1 - m0)
- Bhattacharyya D_B = 1/8 d^T S^-1 d + 1/2 log(det S / sqrt(det S0 det S1)), S = (S0 + S1)/2
- squared Hellinger, in the lecture table's convention (no factor 1/2):
  integral (sqrt p - sqrt q)^2 = 2 (1 - exp(-D_B))
- W2^2 = |d|^2 + tr(S0 + S1 - 2 (S1^1/2 S0 S1^1/2)^1/2)   (Dowson & Landau 1982)
- W1 in 1D for equal variances is |m0 - m1| (a shift moves every quantile by it).
"""

from __future__ import annotations

import math

import numpy as np


def _mvn(mean, cov) -> tuple[np.ndarray, np.ndarray]:
    m = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    c = np.asarray(cov, dtype=np.float64)
    if c.ndim == 0:
        c = np.eye(m.size) * c
    elif c.ndim == 1:
        c = np.diag(c)
    if c.shape != (m.size, m.size):
        raise ValueError(f"covariance of shape {c.shape} does not match a mean of size {m.size}")
    return m, c


def _logdet(c: np.ndarray) -> float:
    sign, val = np.linalg.slogdet(c)
    if sign <= 0:
        raise ValueError("covariance must be positive definite")
    return float(val)


def gaussian_kl(m0, s0, m1, s1) -> float:
    """KL(N(m0, s0) || N(m1, s1)) in nats."""
    m0, c0 = _mvn(m0, s0)
    m1, c1 = _mvn(m1, s1)
    d = m1 - m0
    c1_inv = np.linalg.inv(c1)
    return 0.5 * float(np.trace(c1_inv @ c0) + d @ c1_inv @ d - m0.size + _logdet(c1) - _logdet(c0))


def gaussian_bhattacharyya(m0, s0, m1, s1) -> float:
    """Bhattacharyya distance -log integral sqrt(p q)."""
    m0, c0 = _mvn(m0, s0)
    m1, c1 = _mvn(m1, s1)
    c = 0.5 * (c0 + c1)
    d = m1 - m0
    return float(d @ np.linalg.solve(c, d) / 8 + 0.5 * (_logdet(c) - 0.5 * (_logdet(c0) + _logdet(c1))))


def gaussian_hellinger2(m0, s0, m1, s1) -> float:
    """integral (sqrt p - sqrt q)^2 = 2 (1 - exp(-D_B)) (the table's squared Hellinger)."""
    return 2.0 * -math.expm1(-gaussian_bhattacharyya(m0, s0, m1, s1))


def gaussian_w2(m0, s0, m1, s1) -> float:
    """Wasserstein-2 distance between Gaussians (Dowson & Landau 1982)."""
    from scipy.linalg import sqrtm

    m0, c0 = _mvn(m0, s0)
    m1, c1 = _mvn(m1, s1)
    r1 = np.real(sqrtm(c1))
    cross = np.real(sqrtm(r1 @ c0 @ r1))
    w2sq = float((m0 - m1) @ (m0 - m1) + np.trace(c0 + c1 - 2 * cross))
    return math.sqrt(max(w2sq, 0.0))
