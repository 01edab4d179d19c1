"""ganforge.metrics.math against independent references: scipy, torchmetrics, prdc, direct formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from scipy import linalg

from ganforge.metrics import math as M


def _pair(n: int, d: int, seed: int, shift: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) / np.sqrt(d)
    fake = rng.normal(size=(n + 7, d)) @ rng.normal(size=(d, d)) / np.sqrt(d) + shift
    return real, fake


def _scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """pytorch-fid's reference: scipy.linalg.sqrtm of the covariance product."""
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("n,d,seed", [(50, 4, 0), (300, 16, 1), (1000, 64, 2), (1500, 128, 3)])
def test_fid_matches_scipy_sqrtm(n: int, d: int, seed: int) -> None:
    real, fake = _pair(n, d, seed)
    assert_allclose(M.fid(real, fake), _scipy_fid(real, fake), rtol=1e-5, atol=0)


@pytest.mark.parametrize("n_real,n_fake,d", [(50, 50, 128), (10, 10, 32), (40, 300, 128), (300, 40, 128)])
def test_fid_with_fewer_samples_than_dimensions_matches_scipy_sqrtm(n_real: int, n_fake: int, d: int) -> None:
    # n <= d: singular covariances (rank n - 1), so no Cholesky factor exists for one or both of them; the
    # trace term then goes through the other covariance's factor or the symmetric square root. scipy's sqrtm
    # of the singular product carries ~1e-8 of rounding in the square roots of its zero eigenvalues.
    rng = np.random.default_rng(n_real + n_fake + d)
    real = rng.normal(size=(n_real, d)) @ rng.normal(size=(d, d)) / np.sqrt(d)
    fake = rng.normal(size=(n_fake, d)) @ rng.normal(size=(d, d)) / np.sqrt(d) + 0.3
    assert min(np.linalg.matrix_rank(np.cov(real, rowvar=False)), np.linalg.matrix_rank(np.cov(fake, rowvar=False))) < d
    with np.errstate(all="ignore"):
        expected = _scipy_fid(real, fake)
    assert_allclose(M.fid(real, fake), expected, rtol=1e-6, atol=0)
    assert_allclose(M.fid(fake, real), expected, rtol=1e-6, atol=0)


def test_covariance_one_gemm_falls_back_to_centring_when_the_mean_dominates() -> None:
    # A mean 1e6 times the spread would cancel ~12 digits in X^T X - n mu mu^T: the centred path must be taken.
    x = np.random.default_rng(10).normal(size=(200, 4)) + np.array([1e6, 0.0, -3e5, 1.0])
    xc = x - x.mean(0)
    assert_allclose(M.mean_cov(x)[1], xc.T @ xc / 199, rtol=1e-9, atol=1e-12)


class _Identity(torch.nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.num_features = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.mark.parametrize("n,d,seed", [(200, 8, 4), (800, 32, 5), (2000, 128, 6)])
def test_fid_matches_torchmetrics(n: int, d: int, seed: int) -> None:
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = _pair(n, d, seed)
    tm = FrechetInceptionDistance(feature=_Identity(d))
    tm.update(torch.from_numpy(real), real=True)
    tm.update(torch.from_numpy(fake), real=False)
    assert_allclose(M.fid(real, fake), float(tm.compute()), rtol=1e-5, atol=0)


def test_fid_identity_and_symmetry() -> None:
    real, fake = _pair(500, 16, 7)
    assert_allclose(M.fid(real, real), 0.0, rtol=0, atol=1e-8)
    assert_allclose(M.fid(real, fake), M.fid(fake, real), rtol=1e-10)


def test_fid_closed_form_for_gaussians() -> None:
    # Diagonal covariances: FID = |mu1-mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert_allclose(M.fid_from_stats(mu1, np.diag(a), mu2, np.diag(b)), expected, rtol=1e-12)


def test_covariance_is_unbiased() -> None:
    x = np.random.default_rng(8).normal(size=(5, 3))
    _, cov = M.mean_cov(x)
    xc = x - x.mean(0)
    assert_allclose(cov, xc.T @ xc / 4, rtol=1e-12)


def test_kid_subset_formula_matches_torchmetrics() -> None:
    from torchmetrics.image.kid import poly_mmd

    real, fake = _pair(400, 32, 9)
    for lo in (0, 100, 200):
        x, y = real[lo : lo + 200], fake[lo : lo + 200]
        ref = float(poly_mmd(torch.from_numpy(x), torch.from_numpy(y), degree=3, gamma=None, coef=1.0))
        assert_allclose(M.mmd2_unbiased(x, y), ref, rtol=0, atol=1e-6)


def test_kid_matches_torchmetrics_on_the_same_subsets() -> None:
    from torchmetrics.image.kid import poly_mmd

    real, fake = _pair(600, 16, 10)
    rng = np.random.default_rng(3)  # same draws as M.kid(seed=3)
    ref = []
    for _ in range(5):
        ri, fi = rng.choice(len(real), 300, replace=False), rng.choice(len(fake), 300, replace=False)
        ref.append(float(poly_mmd(torch.from_numpy(real[ri]), torch.from_numpy(fake[fi]))))
    mean, std = M.kid(real, fake, subsets=5, subset_size=300, seed=3)
    assert_allclose([mean, std], [np.mean(ref), np.std(ref)], rtol=0, atol=1e-6)


def test_kid_unbiased_near_zero_for_same_distribution() -> None:
    rng = np.random.default_rng(11)
    a, b = rng.normal(size=(2000, 16)), rng.normal(size=(2000, 16))
    mean, std = M.kid(a, b, subsets=20, subset_size=500)
    assert abs(mean) < 3 * std + 1e-4


def test_kid_with_whole_sample_subsets_is_one_permutation_invariant_value() -> None:
    real, fake = _pair(120, 8, 13)
    fake = fake[:120]
    rng = np.random.default_rng(0)
    perms = [M.mmd2_unbiased(real[rng.permutation(120)], fake[rng.permutation(120)]) for _ in range(5)]
    mean, std = M.kid(real, fake, subset_size=120)
    assert_allclose(perms, mean, rtol=1e-12)
    assert std == 0.0


def test_kid_rejects_oversized_subsets() -> None:
    real, fake = _pair(50, 4, 12)
    with pytest.raises(ValueError, match="subset_size"):
        M.kid(real, fake, subset_size=100)


@pytest.mark.parametrize("k", [3, 5])
def test_prdc_matches_reference_package(k: int) -> None:
    import prdc

    real, fake = _pair(600, 16, 13, shift=0.2)
    fake = fake[:500]
    ref = prdc.compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    p, r = M.precision_recall(real, fake, k=k)
    d, c = M.density_coverage(real, fake, k=k)
    assert_allclose([p, r, d, c], [ref["precision"], ref["recall"], ref["density"], ref["coverage"]], rtol=0,
                    atol=1e-12)


def test_precision_recall_is_asymmetric_in_the_right_direction() -> None:
    rng = np.random.default_rng(14)
    real = rng.normal(size=(800, 2))
    fake = rng.normal(size=(800, 2)) * 0.2  # collapsed onto the centre: precise, low recall
    p, r = M.precision_recall(real, fake, k=3)
    assert p > 0.95 and r < 0.5


def test_inception_score_matches_direct_formula() -> None:
    logits = np.random.default_rng(15).normal(size=(1000, 10)) * 3
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    scores = []
    for part in np.array_split(p, 4):
        py = part.mean(0)
        scores.append(np.exp(np.mean([np.sum(q * np.log(q / py)) for q in part])))
    assert_allclose(M.inception_score(logits, splits=4), (np.mean(scores), np.std(scores)), rtol=1e-10)


def test_inception_score_bounds() -> None:
    one_hot = np.eye(10)[np.arange(1000) % 10] * 50  # confident and uniform over classes: IS = 10
    assert_allclose(M.inception_score(one_hot, splits=1)[0], 10.0, rtol=1e-6)
    assert_allclose(M.inception_score(np.zeros((100, 10)), splits=1)[0], 1.0, rtol=1e-12)


def test_class_histogram_metrics() -> None:
    real = np.repeat(np.arange(4), 25)
    h = M.class_histogram_metrics(np.array([0, 0, 1, 1]), real, 4)
    assert h["classes_covered"] == 2
    assert_allclose(h["kl"], np.log(2.0), rtol=1e-12)  # KL([.5,.5,0,0] || uniform(4)) = log 2
    assert_allclose(M.class_histogram_metrics(real, real, 4)["kl"], 0.0, atol=1e-12)


def test_psnr_matches_direct_computation() -> None:
    rng = np.random.default_rng(16)
    x = rng.uniform(0, 1, size=(3, 1, 16, 16))
    y = np.clip(x + rng.normal(scale=0.05, size=x.shape), 0, 1)
    mse = ((x - y) ** 2).reshape(3, -1).mean(1)
    assert_allclose(M.psnr(x, y, data_range=1.0), np.mean(10 * np.log10(1.0 / mse)), rtol=1e-12)


def _slow_ssim(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """Literal Wang et al. (2004): a Gaussian-weighted window at every valid position."""
    t = np.arange(11) - 5.0
    g = np.exp(-(t**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    vals = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            a, b = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            ma, mb = (w * a).sum(), (w * b).sum()
            va, vb = (w * (a - ma) ** 2).sum(), (w * (b - mb) ** 2).sum()
            cab = (w * (a - ma) * (b - mb)).sum()
            vals.append((2 * ma * mb + c1) * (2 * cab + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


def test_ssim_matches_slow_reference_and_torchmetrics() -> None:
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    rng = np.random.default_rng(17)
    x = rng.uniform(0, 255, size=(2, 1, 24, 20))
    y = np.clip(x + rng.normal(scale=20, size=x.shape), 0, 255)
    ref = np.mean([_slow_ssim(x[i, 0], y[i, 0], 255.0) for i in range(2)])
    ours = M.ssim(x, y, data_range=255.0)
    assert_allclose(ours, ref, rtol=1e-10)
    # torchmetrics averages over the whole reflect-padded image; its map's valid part is Wang's SSIM.
    _, full = tm_ssim(torch.from_numpy(y), torch.from_numpy(x), data_range=255.0, kernel_size=11, sigma=1.5,
                      return_full_image=True)
    assert_allclose(ours, float(full[..., 5:-5, 5:-5].mean()), rtol=1e-6)
    assert_allclose(M.ssim(x, x, data_range=255.0), 1.0, rtol=1e-12)
