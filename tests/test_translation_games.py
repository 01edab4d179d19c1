"""CycleGAN, StarGAN, SRGAN on tiny nets: one step, phase isolation, exact resume (image pools, schedulers)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from conftest import assert_same_state, read_records

from ganforge.config import load_config
from ganforge.errors import ConfigError
from ganforge.games.cyclegan import ImagePool
from ganforge.training.trainer import Trainer

pytest.importorskip("PIL")

_RUN = {"train": {"steps": 4, "batch_size": 4, "threads": 1, "log_every": 1, "device": "cpu"},
        "eval": {"every": 0, "n": 8, "samples": False}, "checkpoint": {"every": 2, "keep": 10}}
_G = {"name": "resnet-gen", "ngf": 4, "n_blocks": 1}
_D = {"name": "patchgan", "ndf": 4, "n_layers": 2}

CONFIGS = {
    "cyclegan": {
        "data": {"name": "fmnist-unpaired", "transform": "invert", "limit": 64},
        "game": {"name": "cyclegan", "pool_size": 3},
        "objective": {"name": "lsgan"},
        "nets": {"g_ab": _G, "g_ba": _G, "d_a": _D, "d_b": _D},
        "train": {"lr_decay_start": 1, "lr_decay_steps": 3},
    },
    "cyclegan-tint": {  # 1 -> 3 channels: identity loss off by shape
        "data": {"name": "fmnist-unpaired", "transform": "tint", "limit": 64},
        "game": {"name": "cyclegan", "pool_size": 3},
        "objective": {"name": "lsgan"},
        "nets": {"g_ab": _G, "g_ba": _G, "d_a": _D, "d_b": _D},
    },
    "cyclegan-toy": {  # the vector path: MLP nets on two toy mixtures
        "data": {"name": "unpaired", "a": {"name": "ring", "n": 256}, "b": {"name": "grid", "n": 256}},
        "game": {"name": "cyclegan", "pool_size": 5},
        "nets": {r: {"name": "mlp", "hidden": 8, "depth": 1} for r in ("g_ab", "g_ba", "d_a", "d_b")},
    },
    "stargan": {
        "data": {"name": "fmnist-domains", "transforms": ["identity", "invert", "fade"], "limit": 60},
        "game": {"name": "stargan"},
        "objective": {"name": "wgan-gp"},
        "nets": {"g": _G, "d": _D},
        "train": {"d_steps": 2},
    },
    "srresnet": {
        "data": {"name": "fmnist-sr", "scale": 2, "limit": 32},
        "game": {"name": "srgan"},
        "nets": {"g": {"name": "srresnet", "channels": 4, "n_blocks": 1}, "d": {"name": "srgan-d", "ndf": 4,
                                                                               "n_blocks": 2, "hidden": 8}},
    },
    "srgan": {
        "data": {"name": "fmnist-sr", "scale": 4, "limit": 32},
        "game": {"name": "srgan", "pixel": 0.1, "content": 1.0, "adversarial": 1e-3},
        "objective": {"name": "ns"},
        "nets": {"g": {"name": "srresnet", "channels": 4, "n_blocks": 1, "residual": True},
                 "d": {"name": "srgan-d", "ndf": 4, "n_blocks": 2, "hidden": 8}},
    },
}


def _raw(name: str, **train) -> dict:
    raw = copy.deepcopy(CONFIGS[name])
    out = {"name": name, **copy.deepcopy(_RUN), **{k: v for k, v in raw.items() if k != "train"}}
    out["train"].update(raw.get("train", {}))
    out["train"].update(train)
    return out


def _trainer(name: str, run_dir: Path, **train) -> Trainer:
    try:
        return Trainer(load_config(None, base=_raw(name, **train)), run_dir, quiet=True)
    except ConfigError as e:
        if "Fashion-MNIST" in str(e):
            pytest.skip(str(e).splitlines()[0])
        raise


@pytest.mark.parametrize("name", list(CONFIGS))
def test_one_step_and_phase_isolation(name: str, tmp_path) -> None:
    tr = _trainer(name, tmp_path)
    game = tr.game
    for ph in tr.phases:
        before = {f"{r}.{k}": p.detach().clone() for r, net in game.nets.items() for k, p in net.named_parameters()}
        logs = tr._run_phase(ph)
        assert logs and all(torch.isfinite(torch.tensor(v)) for v in logs.values()), (ph.name, logs)
        inside = set(game.groups[ph.group])
        moved = set()
        for r, net in game.nets.items():
            for k, p in net.named_parameters():
                same = torch.equal(p, before[f"{r}.{k}"])
                if r not in inside:
                    assert same, f"phase {ph.name} changed {r}.{k} outside its group"
                elif not same:
                    moved.add(r)
        assert moved == inside, f"phase {ph.name}: nets that moved {moved} != its group {inside}"
    x = game.sample(5, generator=torch.Generator().manual_seed(0))
    assert x.shape == (5, *game.eval_reference().shape) and torch.isfinite(x).all()


def test_srresnet_declares_no_critic_phase(tmp_path) -> None:
    assert [p.name for p in _trainer("srresnet", tmp_path).phases] == ["g"]
    assert [p.name for p in _trainer("srgan", tmp_path / "b").phases] == ["d", "g"]


@pytest.mark.parametrize("name", ["cyclegan", "stargan", "srgan"])
def test_resume_is_exact(name: str, tmp_path) -> None:
    full = _trainer(name, tmp_path / "full")
    full.fit()
    half = _trainer(name, tmp_path / "half", steps=2)
    half.fit()
    resumed = Trainer.resume(tmp_path / "half", {"train.steps": 4}, quiet=True)
    resumed.fit()
    a, b = full.state_dict(), resumed.state_dict()
    for key in ("game", "optimizers", "schedulers", "data", "step"):
        assert_same_state(a[key], b[key], key)
    assert read_records(tmp_path / "full") == read_records(tmp_path / "half")
    if name == "cyclegan":
        assert int(a["game"]["pool_a.count"]) == 3 and torch.count_nonzero(a["game"]["pool_b.images"]) > 0
        assert a["schedulers"], "lr decay configured but no scheduler state saved"


def test_linear_lr_decay(tmp_path) -> None:
    tr = _trainer("cyclegan", tmp_path, steps=4, lr_decay_start=1, lr_decay_steps=2)
    base = tr.optimizers["g"].param_groups[0]["lr"]
    seen = []
    for _ in range(4):
        tr.cfg.data["train"]["steps"] = tr.step + 1
        tr.fit()
        seen.append(tr.optimizers["g"].param_groups[0]["lr"] / base)
    torch.testing.assert_close(torch.tensor(seen), torch.tensor([1.0, 0.5, 0.0, 0.0]), rtol=0, atol=1e-12)
    with pytest.raises(ConfigError, match="lr_decay_steps"):
        _trainer("cyclegan", tmp_path / "bad", lr_decay_start=1, lr_decay_steps=0)


def test_image_pool_semantics() -> None:
    torch.manual_seed(0)
    pool = ImagePool(4, (2,))
    first = torch.arange(6.0).view(3, 2)
    assert torch.equal(pool.query(first), first) and int(pool.count) == 3  # filling: fakes pass through
    new = torch.full((50, 2), -1.0)
    pool.query(torch.full((1, 2), 9.0))  # fills the last slot
    out = pool.query(new)
    old = {tuple(r) for r in torch.cat([first, torch.full((1, 2), 9.0)]).tolist()}
    swapped = [tuple(r) for r in out.tolist() if tuple(r) != (-1.0, -1.0)]
    assert 0 < len(swapped) < 50 and set(swapped) <= old | {(-1.0, -1.0)}  # about half come from the pool
    assert set(pool.state_dict()) == {"images", "count"}
    assert torch.equal(ImagePool(0, (2,)).query(first), first)


def test_bad_data_is_named(tmp_path) -> None:
    raw = _raw("cyclegan")
    raw["data"] = {"name": "ring"}
    with pytest.raises(ConfigError, match="cyclegan needs unpaired data with parts a and b"):
        Trainer(load_config(None, base=raw), tmp_path / "a", quiet=True)
    raw = _raw("srresnet")
    raw["data"] = {"name": "fmnist", "limit": 8}
    with pytest.raises(ConfigError, match="srgan needs paired low/high-resolution data"):
        Trainer(load_config(None, base=raw), tmp_path / "b", quiet=True)
    raw = _raw("stargan")
    raw["data"] = {"name": "ring"}
    with pytest.raises(ConfigError, match="stargan needs images labelled by domain"):
        Trainer(load_config(None, base=raw), tmp_path / "c", quiet=True)
    from ganforge.games.srgan import SRGAN

    with pytest.raises(ConfigError, match="VGG19 content loss is not implemented"):
        SRGAN(content_net="vgg19")


RECIPES = sorted(str(p) for d in ("cyclegan", "stargan", "srgan")
                 for p in (Path(__file__).parents[1] / "configs" / d).glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipes_resolve(recipe: str) -> None:
    cfg = load_config(recipe)
    assert cfg["game"]["name"] in ("cyclegan", "stargan", "srgan")


@pytest.mark.parametrize("label", ["channels", "shift"])
def test_conditional_resnet_generator_sees_the_label(label: str) -> None:
    """A label tiled into constant maps before an instance norm would be erased; G(x, c) must depend on c."""
    from ganforge.nets.translation import ResnetGenerator

    torch.manual_seed(0)
    g = ResnetGenerator(in_shape=(1, 8, 8), out_shape=(1, 8, 8), n_classes=3, ngf=4, n_blocks=1, label=label)
    x = torch.randn(2, 1, 8, 8)
    outs = [g(x, torch.full((2,), k)) for k in range(3)]
    assert all((outs[i] - outs[j]).abs().max() > 1e-3 for i in range(3) for j in range(i))
    with pytest.raises(ValueError, match="conditional"):
        g(x)
    with pytest.raises(ConfigError, match="label must be 'channels' or 'shift'"):
        ResnetGenerator(in_shape=(1, 8, 8), out_shape=(1, 8, 8), n_classes=3, label="film")


def test_label_channels_are_input_channels_zero_padded() -> None:
    """StarGAN's G reads [image, K tiled one-hot maps]: the stem conv takes C + K channels, the maps are 1 on
    the image and 0 in the padding frame (reflection-padding them instead would make the stem's response
    constant, and the instance norm after it would erase the label)."""
    from ganforge.nets.translation import ResnetGenerator

    torch.manual_seed(0)
    g = ResnetGenerator(in_shape=(1, 8, 8), out_shape=(1, 8, 8), n_classes=3, ngf=4, n_blocks=1)
    conv = g.stem[0]
    assert conv.in_channels == 1 + 3 and g.label_shift is None
    seen = {}
    conv.register_forward_hook(lambda m, inp, out: seen.update(x=inp[0]))
    x = torch.randn(2, 1, 8, 8)
    g(x, torch.tensor([2, 0]))
    xin = seen["x"]
    assert xin.shape == (2, 4, 14, 14)
    torch.testing.assert_close(xin[:, :1], torch.nn.functional.pad(x, (3, 3, 3, 3), mode="reflect"))
    frame = torch.zeros(14, 14)
    frame[3:11, 3:11] = 1
    torch.testing.assert_close(xin[0, 1:], torch.stack([0 * frame, 0 * frame, frame]))
    torch.testing.assert_close(xin[1, 1:], torch.stack([frame, 0 * frame, 0 * frame]))
    # the unconditional net (CycleGAN) has no label channels
    assert ResnetGenerator(in_shape=(1, 8, 8), out_shape=(1, 8, 8), ngf=4, n_blocks=1).stem[0].in_channels == 1


def test_shipped_recipes_identity_weight_suits_their_transform() -> None:
    """The identity loss |G_ab(b) - b| contradicts a T that moves B: a fmnist recipe whose T is not the identity
    must not weight it (tint changes the shape, so the game drops it anyway); folder recipes keep the paper's 5."""
    from ganforge.data.domains import get_transform

    for recipe in RECIPES:
        cfg = load_config(recipe)
        if cfg["game"]["name"] != "cyclegan":
            continue
        data = cfg["data"]
        if data["name"] == "fmnist-unpaired":
            t = get_transform(data["transform"])
            assert t.channels(1) != 1 or cfg["game"]["identity"] == 0, recipe
        else:
            assert cfg["game"]["identity"] == 5.0, recipe
