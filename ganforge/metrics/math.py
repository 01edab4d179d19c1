"""Pure metric math on feature arrays: numpy/scipy, float64, no torch.

Every function takes ``real`` then ``fake`` as (n, d) arrays (keyword order
matters for the asymmetric ones: precision, recall, density, coverage).

Covariance convention: the *unbiased* sample covariance, divided by n - 1
(``np.cov`` default; pytorch-fid, torch-fidelity and torchmetrics agree).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator

import numpy as np
from scipy import linalg

from ganforge.registry import METRICS


def _f64(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"{name} must be a (n, d) array with n >= 2, got shape {a.shape}")
    return a


# Up to this feature width the covariance and matrix square root run on one BLAS thread. At small d
# they are a chain of many tiny BLAS/LAPACK calls (a Cholesky, sygst and the tridiagonal reduction of
# eigvalsh each call level-2/3 routines O(d) times); OpenBLAS splits every call over all its threads and
# each split waits for the slowest thread, so with another job on a 2-core machine the FID at d = 128
# took 0.1-5 s of wall time instead of ~20 ms (benchmarks/results/metrics.md). The covariance came out
# bit-identical with OpenBLAS either way; the eigenvalue solve's rounding moves the FID by ~1e-14 relative.
SERIAL_BLAS_MAX_DIM = 512


@functools.cache
def _blas_pools():
    from threadpoolctl import ThreadpoolController  # a scikit-learn dependency; imported on first use

    return ThreadpoolController().select(user_api="blas")  # numpy's and scipy's OpenBLAS (or MKL)


# The thread limit is process-wide: one holder at a time, so that two threads' limits cannot
# restore each other's setting in the wrong order.
_SERIAL_BLAS_LOCK = threading.RLock()


@contextlib.contextmanager
def serial_blas(d: int) -> Iterator[None]:
    """Run BLAS on one thread inside this context when the feature width ``d`` is small; else change nothing."""
    if d > SERIAL_BLAS_MAX_DIM:
        yield
        return
    with _SERIAL_BLAS_LOCK, _blas_pools().limit(limits=1):
        yield


# Above this ratio of raw to centred second moment, X^T X - n mu mu^T would have cancelled more
# than 4 of float64's ~16 digits: centre the features first instead.
_CANCELLATION_LIMIT = 1e4


def mean_scatter(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and centred scatter matrix sum_i (x_i - mu)(x_i - mu)^T (d, d) of a float64 (n, d) array.

    One GEMM and no centred copy: X^T X - n mu mu^T (numpy hands ``x.T @ x``
    to BLAS syrk, half a GEMM). Where the mean is so large against the spread
    that the subtraction would cancel more than 4 digits of some feature's
    variance, the scatter is recomputed from centred features.
    """
    n, d = x.shape
    mu = x.mean(0)
    with serial_blas(d):
        raw = x.T @ x
        scatter = raw - n * np.outer(mu, mu)
        if np.any(np.diagonal(raw) > _CANCELLATION_LIMIT * np.diagonal(scatter)):
            xc = x - mu
            scatter = xc.T @ xc
    return mu, scatter


def mean_cov(x) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and unbiased covariance (d, d), divided by n - 1."""
    x = _f64(x, "features")
    mu, scatter = mean_scatter(x)
    scatter /= x.shape[0] - 1
    return mu, scatter


def _sym_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """tr sqrtm(S1 S2) for symmetric PSD S1, S2.

    With S1 = L L^T (Cholesky), S1 S2 is similar to L^T S2 L, which is
    symmetric PSD, so the trace is the sum of square roots of its eigenvalues:
    one Cholesky, LAPACK's ``sygst`` to form L^T S2 L (a quarter of the work of
    two dense products) and one symmetric eigenvalue solve, instead of scipy's
    Schur-based ``sqrtm`` or a general ``eigvals`` of the non-symmetric S1 S2
    (much faster, never complex). S1 S2 and S2 S1 have the same eigenvalues,
    so a singular S1 tries S2's Cholesky; when both are singular (fewer
    samples than dimensions) the symmetric square root S1^1/2 stands in for L.
    One BLAS thread up to d = ``SERIAL_BLAS_MAX_DIM``.
    """
    with serial_blas(s1.shape[0]):
        return _trace_sqrt_product(s1, s2)


def _trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    m = None
    for a, b in ((s1, s2), (s2, s1)):
        try:
            chol = linalg.cholesky(a, lower=True, check_finite=False)
        except linalg.LinAlgError:
            continue
        (sygst,) = linalg.get_lapack_funcs(("sygst",), (b, chol))
        m, info = sygst(b, chol, itype=2, lower=1)  # L^T b L in the lower triangle
        if info == 0:
            break
        m = None
    if m is None:
        r = _sym_sqrt(s1)
        m = r @ s2 @ r
    w = linalg.eigvalsh(m, lower=True, check_finite=False)
    return float(np.sqrt(np.clip(w, 0, None)).sum())


def fid_from_stats(mu1, sigma1, mu2, sigma2) -> float:
    """Frechet distance between N(mu1, S1) and N(mu2, S2) (Heusel et al. 2017, eq. 6; Dowson & Landau 1982).

    ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr sqrtm(S1 S2).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"mismatched statistics: mu {mu1.shape} vs {mu2.shape}, sigma {s1.shape} vs {s2.shape}")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2))


@METRICS.register("fid")
def fid(real, fake) -> float:
    """FID: Frechet distance between Gaussians fitted to real and fake features (Heusel et al. 2017)."""
    return fid_from_stats(*mean_cov(real), *mean_cov(fake))


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / d + 1)^3, the KID kernel (Binkowski et al. 2018, sec. 3)."""
    k = x @ y.T
    k /= x.shape[1]
    k += 1.0
    k3 = k * k  # explicit products: several times faster than ** 3 on large arrays
    k3 *= k
    return k3


def _cubic_kernel_sum(g: np.ndarray, d: int, g_sum: float, tmp: np.ndarray | None) -> float:
    """sum_ij (g_ij / d + 1)^3 for a Gram matrix g, with the cube expanded:
    sum g^3 / d^3 + 3 sum g^2 / d^2 + 3 sum g / d + size. The two large sums
    are BLAS dot products, so g is read three times and written once, instead
    of the five passes of forming the kernel matrix and summing it."""
    sq = np.multiply(g, g, out=tmp)
    return float(np.vdot(sq, g) / d**3 + 3.0 * np.vdot(g, g) / d**2 + 3.0 * g_sum / d + g.size)


def mmd2_unbiased(x: np.ndarray, y: np.ndarray, *, work: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """Unbiased MMD^2 estimate with the cubic polynomial kernel, equal-size samples (Gretton et al. 2012, eq. 3).

    The kernel k = ``polynomial_kernel`` is never formed: each kernel sum comes
    from its Gram matrix (``_cubic_kernel_sum``); x x^T and y y^T go to BLAS
    syrk. ``work``: two (m, m) float64 scratch arrays to reuse across calls.
    """
    m, d = x.shape
    gram, tmp = work if work is not None else (np.empty((m, m)), np.empty((m, m)))
    sx, sy = x.sum(0), y.sum(0)
    within = 0.0
    for a, s in ((x, sx), (y, sy)):
        g = np.matmul(a, a.T, out=gram)
        diag = np.diagonal(g) / d + 1.0
        within += _cubic_kernel_sum(g, d, float(s @ s), tmp) - float((diag * diag * diag).sum())
    cross = _cubic_kernel_sum(np.matmul(x, y.T, out=gram), d, float(sx @ sy), tmp)
    return within / (m * (m - 1)) - 2.0 * cross / (m * m)


@METRICS.register("kid")
def kid(real, fake, *, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID: unbiased MMD^2, cubic polynomial kernel, mean and std over random subsets (Binkowski et al. 2018).

    Each subset draws ``subset_size`` real and fake rows without replacement
    (numpy ``default_rng(seed)``). Returns (mean, std); std divides by the
    number of subsets (ddof 0), as torch-fidelity and torchmetrics do. When ``subset_size`` equals
    both sample sizes every subset is the whole sample, so the one MMD^2 is returned with std 0.
    """
    real, fake = _f64(real, "real"), _f64(fake, "fake")
    if subset_size < 2 or subset_size > min(len(real), len(fake)):
        raise ValueError(f"KID subset_size must be in [2, min(n_real, n_fake) = {min(len(real), len(fake))}], "
                         f"got {subset_size}")
    if subset_size == len(real) == len(fake):
        # Every subset is then a permutation of the full samples, and MMD^2 ignores order: one value.
        return mmd2_unbiased(real, fake), 0.0
    rng = np.random.default_rng(seed)
    work = (np.empty((subset_size, subset_size)), np.empty((subset_size, subset_size)))
    scores = np.array([
        mmd2_unbiased(real[rng.choice(len(real), subset_size, replace=False)],
                      fake[rng.choice(len(fake), subset_size, replace=False)], work=work)
        for _ in range(subsets)
    ])
    return float(scores.mean()), float(scores.std())


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances (len(a), len(b)) via |a|^2 + |b|^2 - 2 a.b (as sklearn computes them)."""
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.clip(d2, 0, None))


def knn_radii(x: np.ndarray, k: int, chunk: int = 2048) -> np.ndarray:
    """Distance from each row of x to its k-th nearest other row (itself excluded)."""
    if not 1 <= k < len(x):
        raise ValueError(f"k must be in [1, n - 1 = {len(x) - 1}], got {k}")
    out = np.empty(len(x))
    for i in range(0, len(x), chunk):  # chunks keep memory at chunk * n, not n^2
        d = pairwise_distances(x[i : i + chunk], x)
        out[i : i + chunk] = np.partition(d, k, axis=1)[:, k]  # index 0 is the point itself
    return out


def _manifold_counts(real: np.ndarray, fake: np.ndarray, real_r: np.ndarray, fake_r: np.ndarray, chunk: int = 2048):
    """For each fake: #real balls containing it; for each real: whether some fake ball contains it, nearest fake."""
    inside_real = np.zeros(len(fake), dtype=np.int64)
    real_in_fake = np.zeros(len(real), dtype=bool)
    nearest_fake = np.full(len(real), np.inf)
    for i in range(0, len(real), chunk):
        d = pairwise_distances(real[i : i + chunk], fake)  # (chunk, n_fake)
        inside_real += (d < real_r[i : i + chunk, None]).sum(0)
        real_in_fake[i : i + chunk] = (d < fake_r[None, :]).any(1)
        nearest_fake[i : i + chunk] = d.min(1)
    return inside_real, real_in_fake, nearest_fake


@METRICS.register("pr")
def precision_recall(real, fake, *, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall with k-NN manifolds (Kynkaanniemi et al. 2019, eq. 1-2).

    precision: share of fakes inside some real k-NN ball; recall: share of
    reals inside some fake k-NN ball. Strict inequality, as in ``prdc``.
    """
    real, fake = _f64(real, "real"), _f64(fake, "fake")
    inside, real_in_fake, _ = _manifold_counts(real, fake, knn_radii(real, k), knn_radii(fake, k))
    return float((inside > 0).mean()), float(real_in_fake.mean())


@METRICS.register("dc")
def density_coverage(real, fake, *, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020, eq. 3-4); real k-NN balls only, so robust to fake outliers.

    density = mean over fakes of (#real balls containing it) / k (can exceed 1);
    coverage = share of reals whose nearest fake lies inside the real's own ball.
    """
    real, fake = _f64(real, "real"), _f64(fake, "fake")
    real_r = knn_radii(real, k)
    inside, _, nearest = _manifold_counts(real, fake, real_r, np.full(len(fake), -np.inf))
    return float(inside.mean() / k), float((nearest < real_r).mean())


@METRICS.register("is")
def inception_score(logits, *, splits: int = 10) -> tuple[float, float]:
    """Inception Score exp(E_x KL(p(y|x) || p(y))) from classifier logits (Salimans et al. 2016, sec. 4).

    Contiguous splits as in the original code; returns (mean, std) over splits (ddof 0).
    """
    z = _f64(logits, "logits")
    if not 1 <= splits <= len(z):
        raise ValueError(f"splits must be in [1, n = {len(z)}], got {splits}")
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    scores = []
    for part in np.array_split(logp, splits):
        p = np.exp(part)
        log_py = np.log(p.mean(0))
        scores.append(np.exp((p * (part - log_py)).sum(1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def class_histogram_metrics(pred_labels, real_labels, n_classes: int) -> dict:
    """Mode statistics on labelled images (as in VEEGAN / PacGAN's Stacked MNIST, with our classifier).

    Returns the fake class histogram, ``classes_covered`` (classes predicted at
    least once) and ``kl`` = KL(fake class distribution || real class
    distribution), in nats; infinite only if fakes land in a class absent from the real labels.
    """
    pred = np.asarray(pred_labels, dtype=np.int64).ravel()
    real = np.asarray(real_labels, dtype=np.int64).ravel()
    q = np.bincount(pred, minlength=n_classes)[:n_classes].astype(np.float64)
    p = np.bincount(real, minlength=n_classes)[:n_classes].astype(np.float64)
    q, p = q / q.sum(), p / p.sum()
    nz = q > 0
    with np.errstate(divide="ignore"):
        kl = float((q[nz] * (np.log(q[nz]) - np.log(p[nz]))).sum())
    return {"histogram": q.tolist(), "classes_covered": int(nz.sum()), "n_classes": n_classes, "kl": kl}


def _images(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise ValueError(f"{name} must be images (N, C, H, W) or (N, H, W), got shape {a.shape}")
    return a


def psnr(x, y, data_range: float) -> float:
    """Peak signal-to-noise ratio 10 log10(R^2 / MSE), per image, averaged over the batch (dB)."""
    x, y = _images(x, "x"), _images(y, "y")
    mse = ((x - y) ** 2).reshape(len(x), -1).mean(1)
    with np.errstate(divide="ignore"):
        return float(np.mean(10.0 * np.log10(data_range**2 / mse)))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    t = np.arange(size) - (size - 1) / 2
    w = np.exp(-(t**2) / (2 * sigma**2))
    return w / w.sum()


def ssim(x, y, data_range: float, *, win_size: int = 11, sigma: float = 1.5) -> float:
    """Structural similarity (Wang et al. 2004, eq. 13): Gaussian window 11, sigma 1.5, K1 = 0.01, K2 = 0.03.

    Local statistics are Gaussian-weighted (population form); the SSIM map is
    taken over the 'valid' region (no padding) and averaged per channel and
    image, then over the batch.
    """
    from scipy.ndimage import correlate1d

    x, y = _images(x, "x"), _images(y, "y")
    if x.shape[-1] < win_size or x.shape[-2] < win_size:
        raise ValueError(f"SSIM needs images at least {win_size}x{win_size}, got {x.shape[-2:]}")
    w, h = _gaussian_window(win_size, sigma), win_size // 2

    def blur(a: np.ndarray) -> np.ndarray:
        a = correlate1d(correlate1d(a, w, axis=-1, mode="constant"), w, axis=-2, mode="constant")
        return a[..., h:-h, h:-h]  # keep the valid region only

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.reshape(len(x), -1).mean(1).mean())
