"""pix2pix: loss terms against their formulas, the U-Net's skips, PatchGAN geometry, paired data, a run that learns."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_same_state, read_records
from torch.testing import assert_close

from ganforge import objectives
from ganforge.config import load_config
from ganforge.data.paired import CLASS_TINTS, HOLE_FILL, paired, paired_folder, sobel_edges
from ganforge.errors import ConfigError
from ganforge.games.pix2pix import Pix2Pix
from ganforge.nets.pix2pix import UNet, patch_geometry
from ganforge.nets.translation import PatchGAN
from ganforge.training.trainer import Trainer

G = {"name": "unet", "ngf": 4, "dropout": 0.0}
D = {"name": "patchgan", "ndf": 4, "n_layers": 1}


def neg_log_sig(v: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(v), averaged over every patch: the logistic loss of patches labelled real."""
    return -torch.log(torch.sigmoid(v)).mean()


def neg_log_one_minus_sig(v: torch.Tensor) -> torch.Tensor:
    return -torch.log(1 - torch.sigmoid(v)).mean()


def _game(c_a: int = 1, c_b: int = 1, g: dict = G, objective: str = "ns", **params) -> tuple[Pix2Pix, dict]:
    torch.manual_seed(0)
    a, b = torch.randint(256, (6, c_a, 8, 8), dtype=torch.uint8), torch.randint(256, (6, c_b, 8, 8), dtype=torch.uint8)
    data = paired("toy-pairs", a, b)
    game = Pix2Pix(**params)
    game.build(data, {"g": g, "d": D}, objectives.get(objective), [])
    return game, {"x": data.to_model(b), "a": data.to_model(a)}


def _phases(game: Pix2Pix) -> dict:
    return {p.name: p for p in game.phases()}


# -- losses ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("c_b", [1, 3])
def test_generator_loss_is_cgan_plus_100_l1(c_b: int) -> None:
    game, batch = _game(c_b=c_b)
    g, d_inner, a, b = game.nets["g"], game.nets["d"].inner, batch["a"], batch["x"]
    loss, logs = _phases(game)["g"].loss(batch)
    fake = g(a)
    l1 = (b - fake).abs().mean()
    adv = neg_log_sig(d_inner(torch.cat([a, fake], 1)))  # D reads [input, output] channels
    assert d_inner(torch.cat([a, fake], 1)).shape[-2:] == (4, 4)  # a map of patch logits, not one score
    assert_close(loss, adv + 100.0 * l1)
    assert_close(torch.tensor(logs["l1"]), l1.detach())


def test_least_squares_losses_as_the_edges_recipe_plays_them() -> None:
    """objective lsgan, l1 10 (configs/pix2pix/fmnist-edges.yaml): Mao et al. 2017 eq. 2 on every patch score."""
    game, batch = _game(objective="lsgan", l1=10.0)
    g, d_inner, a, b = game.nets["g"], game.nets["d"].inner, batch["a"], batch["x"]
    fake = g(a)
    v_real, v_fake = d_inner(torch.cat([a, b], 1)), d_inner(torch.cat([a, fake], 1))
    g_loss, _ = _phases(game)["g"].loss(batch)
    assert_close(g_loss, 0.5 * ((v_fake - 1) ** 2).mean() + 10.0 * (b - fake).abs().mean())
    d_loss, _ = _phases(game)["d"].loss(batch)
    assert_close(d_loss, 0.5 * ((v_real - 1) ** 2).mean() + 0.5 * (v_fake ** 2).mean())


def test_critic_sees_real_and_fake_pairs_with_the_same_input() -> None:
    game, batch = _game(c_b=3)
    g, d_inner, a, b = game.nets["g"], game.nets["d"].inner, batch["a"], batch["x"]
    assert game.nets["d"].inner.trunk[0].in_channels == 1 + 3
    loss, _ = _phases(game)["d"].loss(batch)
    expected = neg_log_sig(d_inner(torch.cat([a, b], 1))) + neg_log_one_minus_sig(d_inner(torch.cat([a, g(a)], 1)))
    assert_close(loss, expected)
    # a fake pair with another input would be a different (wrong) loss
    wrong = neg_log_sig(d_inner(torch.cat([a, b], 1))) + neg_log_one_minus_sig(
        d_inner(torch.cat([a.flip(0), g(a)], 1)))
    assert (loss - wrong).abs() > 1e-4


def test_ablation_switches() -> None:
    game, batch = _game(l1=0.0)  # the cGAN alone
    g, d_inner, a = game.nets["g"], game.nets["d"].inner, batch["a"]
    loss, logs = _phases(game)["g"].loss(batch)
    assert_close(loss, neg_log_sig(d_inner(torch.cat([a, g(a)], 1))))
    assert "l1" not in logs
    game, batch = _game(adversarial=False)  # L1 alone: no critic phase, D never trains
    assert list(_phases(game)) == ["g"]
    loss, logs = _phases(game)["g"].loss(batch)
    assert_close(loss, 100.0 * (batch["x"] - game.nets["g"](batch["a"])).abs().mean())
    assert "g_adv" not in logs
    game, batch = _game(conditional=False)  # the unconditional critic sees the image alone
    g, d_inner = game.nets["g"], game.nets["d"].inner
    assert d_inner.trunk[0].in_channels == 1
    assert_close(_phases(game)["d"].loss(batch)[0], neg_log_sig(d_inner(batch["x"]))
                 + neg_log_one_minus_sig(d_inner(g(batch["a"]))))
    with pytest.raises(ConfigError, match="not both 0"):
        Pix2Pix(l1=0.0, adversarial=0.0)


def test_bad_data_is_named(tmp_path) -> None:
    game = Pix2Pix()
    with pytest.raises(ConfigError, match="pix2pix needs paired images"):
        from ganforge.data.base import Dataset

        game.build(Dataset("plain", torch.zeros(4, 1, 8, 8, dtype=torch.uint8)), {"g": G, "d": D},
                   objectives.get("ns"), [])


# -- nets -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("n_layers", "rf", "side"), [(1, 12, 16), (2, 26, 8), (3, 54, 4)])
def test_patchgan_receptive_field_and_map_at_32px(n_layers: int, rf: int, side: int) -> None:
    d = PatchGAN(in_shape=(2, 32, 32), ndf=4, n_layers=n_layers)
    assert patch_geometry(d, (2, 32, 32)) == {"receptive_field": rf, "map": (1, side, side)}
    # Empirically: an interior output unit's gradient reaches exactly an rf x rf window of a large input.
    torch.manual_seed(0)
    d = PatchGAN(in_shape=(2, 128, 128), ndf=4, n_layers=n_layers, norm="none")  # a norm would make it global
    x = torch.randn(1, 2, 128, 128, requires_grad=True)
    out = d(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad.abs().sum((0, 1, 3)) > 0).flatten()
    cols = torch.nonzero(x.grad.abs().sum((0, 1, 2)) > 0).flatten()
    assert int(rows[-1] - rows[0]) + 1 == rf and int(cols[-1] - cols[0]) + 1 == rf


def test_unet_depth_and_shapes() -> None:
    g = UNet(in_shape=(1, 32, 32), out_shape=(3, 32, 32), ngf=4)
    assert g.n_down == 5  # 32 -> 1x1, as the paper's 256 -> 1x1 with 8 blocks
    assert g(torch.randn(2, 1, 32, 32)).shape == (2, 3, 32, 32)
    assert UNet(in_shape=(1, 28, 28), out_shape=(1, 28, 28), ngf=4).n_down == 2  # 28 -> 14 -> 7
    assert sum(isinstance(m, torch.nn.Dropout) for m in g.modules()) == 3  # the 3 innermost decoder blocks
    with pytest.raises(ConfigError, match=r"n_down must be in \[1, 2\] for 28x28"):
        UNet(in_shape=(1, 28, 28), out_shape=(1, 28, 28), n_down=3)


def _zero_bottleneck(g: UNet) -> None:
    g.down[-1].register_forward_hook(lambda m, inp, out: torch.zeros_like(out))


def test_unet_skips_carry_the_input_past_a_zeroed_bottleneck() -> None:
    torch.manual_seed(0)
    x1, x2 = torch.randn(2, 1, 16, 16), torch.randn(2, 1, 16, 16)
    g = UNet(in_shape=(1, 16, 16), out_shape=(1, 16, 16), ngf=4, dropout=0.0).eval()
    _zero_bottleneck(g)
    assert (g(x1) - g(x2)).abs().max() > 1e-3  # the skips still deliver the input
    enc_dec = UNet(in_shape=(1, 16, 16), out_shape=(1, 16, 16), ngf=4, dropout=0.0, skips=False).eval()
    _zero_bottleneck(enc_dec)
    assert_close(enc_dec(x1), enc_dec(x2))  # the encoder-decoder has no other path


# -- sampling: dropout as the noise ---------------------------------------------------------------------------
def test_translation_keeps_dropout_at_test_time_with_a_seed() -> None:
    game, batch = _game(c_b=1, g={"name": "unet", "ngf": 4, "dropout": 0.5})
    a = batch["a"]
    state = torch.random.get_rng_state()
    t0, t0b, t1 = game.translate(a, seed=0), game.translate(a, seed=0), game.translate(a, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is untouched
    assert torch.equal(t0, t0b) and (t0 - t1).abs().max() > 1e-4
    assert game.nets["g"].training  # modes restored
    game.test_dropout = False
    assert torch.equal(game.translate(a, seed=0), game.translate(a, seed=1))


# -- data -----------------------------------------------------------------------------------------------------
def _fmnist_or_skip(**params):
    from ganforge.data.paired import fmnist_paired

    try:
        return fmnist_paired(**params)
    except ConfigError as e:
        if "Fashion-MNIST" in str(e):
            pytest.skip(str(e).splitlines()[0])
        raise


def test_fmnist_tasks_have_exact_truth() -> None:
    from scipy import ndimage

    d = _fmnist_or_skip(task="edges", limit=20, heldout=5, pad=0)
    x = d.x.numpy()[:, 0].astype(np.float64) / 255
    # per image: on a stack, ndimage.sobel would also smooth across the batch axis
    mag = np.stack([np.hypot(ndimage.sobel(im, axis=1, mode="constant"), ndimage.sobel(im, axis=0, mode="constant"))
                    for im in x])
    agree = d.info["paired"]["a"].numpy()[:, 0] == np.where(mag > 1.0, 255, 0)
    assert (agree | (np.abs(mag - 1.0) < 1e-5)).all() and 0.05 < (mag > 1.0).mean() < 0.5  # float32 vs 64 at the edge
    assert d.info["heldout"].info["split"] == "test" and len(d.info["heldout"]) == 5

    m = _fmnist_or_skip(task="masked", limit=20, heldout=0, pad=2)
    a, b, mask = m.info["paired"]["a"], m.x, m.info["mask"]
    assert a.shape == b.shape == (20, 1, 32, 32) and "heldout" not in m.info
    assert (mask.flatten(1).sum(1) == 14 * 14).all() and not mask[..., :2, :].any()
    assert (a[mask] == HOLE_FILL).all() and torch.equal(a[~mask], b[~mask])
    assert (b[..., :2, :] == 0).all()  # the padding is black
    more = _fmnist_or_skip(task="masked", limit=40, heldout=0, pad=2)
    assert torch.equal(more.info["mask"][:20], mask)  # a limit does not move an image's hole

    c = _fmnist_or_skip(task="colorize", limit=10, heldout=0, pad=0)
    grey, rgb = c.info["paired"]["a"].double(), c.x.double()
    tint = torch.tensor(CLASS_TINTS, dtype=torch.float64)[c.y][:, :, None, None]
    assert_close(rgb, (grey * tint / 255).round(), rtol=0, atol=0)
    with pytest.raises(ConfigError, match="task must be one of edges, masked, colorize"):
        _fmnist_or_skip(task="sketch")


def test_sobel_edges_of_a_square() -> None:
    x = torch.zeros(1, 1, 8, 8, dtype=torch.uint8)
    x[..., 2:6, 2:6] = 255
    e = sobel_edges(x, 1.0)[0, 0] > 0
    assert e[2, 2] and e[1, 3] and not e[3:5, 3:5].any() and not e[0, 0]  # outline, not inside or far away


def _ab_image(path: Path, h: int, w: int, left: int, right: int, mode: str = "L") -> None:
    from PIL import Image

    arr = np.zeros((h, w), dtype=np.uint8)
    arr[:, : w // 2], arr[:, w // 2:] = left, right
    Image.fromarray(arr).convert(mode).save(path)


def test_ab_folder_splits_halves(tmp_path) -> None:
    for i in range(4):
        _ab_image(tmp_path / f"{i}.png", 8, 16, 10 * i, 200 + i)
    d = paired_folder(root=str(tmp_path), resolution=8, channels=1, holdout=0.25, cache=False)
    assert len(d) == 3 and len(d.info["heldout"]) == 1  # the last file (sorted) is held out
    assert d.info["paired"]["a"].shape == (3, 1, 8, 8)
    assert [int(v) for v in d.info["paired"]["a"][:, 0, 0, 0]] == [0, 10, 20] and [int(v) for v in d.x[:, 0, 0, 0]] == [
        200, 201, 202]
    back = paired_folder(root=str(tmp_path), resolution=8, channels=3, direction="BtoA", holdout=0.0, cache=False)
    assert back.x.shape == (4, 3, 8, 8) and int(back.x[1, 0, 0, 0]) == 10
    assert int(back.info["paired"]["a"][1, 2, 0, 0]) == 201


def test_ab_folder_rejects_bad_files(tmp_path) -> None:
    _ab_image(tmp_path / "good.png", 8, 16, 1, 2)
    _ab_image(tmp_path / "odd.png", 8, 15, 1, 2)
    with pytest.raises(ConfigError, match="odd.png: width 15 is odd"):
        paired_folder(root=str(tmp_path), resolution=8, cache=False)
    (tmp_path / "odd.png").unlink()
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ConfigError, match="broken.jpg is not a readable image"):
        paired_folder(root=str(tmp_path), resolution=8, cache=False)
    (tmp_path / "broken.jpg").unlink()
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ConfigError, match="not images, e.g. notes.txt"):
        paired_folder(root=str(tmp_path), resolution=8, cache=False)
    with pytest.raises(ConfigError, match="needs root"):
        paired_folder()


# -- training -------------------------------------------------------------------------------------------------
RUN = {"name": "p2p", "data": {"name": "fmnist-paired", "task": "masked", "limit": 64, "heldout": 16},
       "game": {"name": "pix2pix"}, "objective": {"name": "ns"}, "nets": {"g": {"name": "unet", "ngf": 4}, "d": D},
       "train": {"steps": 4, "batch_size": 4, "threads": 1, "log_every": 1, "device": "cpu"},
       "eval": {"every": 0, "n": 8, "samples": False}, "checkpoint": {"every": 2, "keep": 10}}


def _trainer(run_dir: Path, raw: dict | None = None, **train) -> Trainer:
    raw = copy.deepcopy(raw or RUN)
    raw["train"].update(train)
    try:
        return Trainer(load_config(None, base=raw), run_dir, quiet=True)
    except ConfigError as e:
        if "Fashion-MNIST" in str(e):
            pytest.skip(str(e).splitlines()[0])
        raise


def test_one_step_moves_only_the_phase_nets_and_samples_heldout(tmp_path) -> None:
    tr = _trainer(tmp_path)
    game = tr.game
    for ph in tr.phases:
        before = {f"{r}.{k}": p.detach().clone() for r, net in game.nets.items() for k, p in net.named_parameters()}
        logs = tr._run_phase(ph)
        assert logs and all(np.isfinite(v) for v in logs.values())
        for r, net in game.nets.items():
            changed = any(not torch.equal(p, before[f"{r}.{k}"]) for k, p in net.named_parameters())
            assert changed == (r in game.groups[ph.group]), (ph.name, r)
    x = game.sample(5, generator=torch.Generator().manual_seed(0))
    ref = game.eval_reference()
    assert x.shape == (5, 1, 32, 32) and len(ref) == 16 and ref.info == {}
    assert ref is game.eval_reference()


def test_resume_is_exact(tmp_path) -> None:
    full = _trainer(tmp_path / "full")
    full.fit()
    half = _trainer(tmp_path / "half", steps=2)
    half.fit()
    resumed = Trainer.resume(tmp_path / "half", {"train.steps": 4}, quiet=True)
    resumed.fit()
    a, b = full.state_dict(), resumed.state_dict()
    for key in ("game", "optimizers", "data", "step"):
        assert_same_state(a[key], b[key], key)
    assert read_records(tmp_path / "full") == read_records(tmp_path / "half")


def test_a_short_run_learns_the_translation(tmp_path) -> None:
    """L1 + cGAN on edges -> garment with a tiny U-Net: the held-out L1 error falls well below its start."""
    raw = copy.deepcopy(RUN)
    raw["data"] = {"name": "fmnist-paired", "task": "edges", "limit": 512, "heldout": 64}
    raw["nets"]["g"] = {"name": "unet", "ngf": 8}
    raw["optim"] = {k: {"name": "adam", "lr": 1e-3, "betas": [0.5, 0.999]} for k in ("g", "d")}
    raw["checkpoint"] = {"every": 0, "keep": 1}
    tr = _trainer(tmp_path, raw, steps=60, batch_size=16, log_every=60)
    held = tr.game.heldout()
    a, b = held.to_model(held.info["paired"]["a"]), held.to_model(held.x)
    before = float((tr.game.translate(a) - b).abs().mean())
    tr.fit()
    after = float((tr.game.translate(a) - b).abs().mean())
    assert after < 0.5 * before, (before, after)


RECIPES = sorted(str(p) for p in (Path(__file__).parents[1] / "configs" / "pix2pix").glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipes_resolve(recipe: str) -> None:
    """The folder recipe keeps the paper's l1 100; the 28 px recipes set theirs from screening (their comments)."""
    cfg = load_config(recipe)
    assert cfg["game"]["name"] == "pix2pix" and cfg["nets"]["g"]["name"] == "unet"
    assert cfg["game"]["l1"] > 0 and cfg["game"]["adversarial"] > 0  # the recipe is the L1 + cGAN row
    if recipe.endswith("folder.yaml"):
        assert cfg["game"]["l1"] == 100.0 and cfg["game"]["test_dropout"]


def test_bench_hole_psnr_is_inside_the_hole_only() -> None:
    from ganforge.bench.pix2pix_bench import scores

    class NoJudge:
        def accuracy(self, x, y):
            return 0.0

        def fid(self, x, y):
            return 0.0

    b = torch.zeros(2, 1, 12, 12)
    mask = torch.zeros(2, 1, 12, 12, dtype=torch.bool)
    mask[:, :, 2:6, 2:6] = True
    x = b.clone()
    x[mask] = 0.5  # squared error 0.25 inside, 0 outside
    row = scores(x, {"b": b, "y": torch.zeros(2), "mask": mask}, NoJudge(), b)
    assert_close(row["psnr_hole"], 10 * np.log10(4 / 0.25))
    assert_close(row["psnr"], 10 * np.log10(4 / (0.25 * 16 / 144)))
