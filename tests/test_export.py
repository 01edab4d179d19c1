"""`ganforge export` and `ganforge.load`: same samples as the run, no training state, no code execution."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from conftest import with_overrides

import ganforge
from ganforge.cli import main
from ganforge.errors import CheckpointError, ConfigError


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    from conftest import TINY

    out = tmp_path_factory.mktemp("export") / "run"
    ganforge.train(with_overrides(TINY, train={"steps": 8, "ema": 0.9}), out=out)
    return out


@pytest.fixture(scope="module")
def bigan_run(tmp_path_factory):
    from conftest import TINY

    raw = with_overrides(TINY, game={"name": "bigan", "z_dim": 2}, train={"steps": 4, "ema": 0.8},
                         nets={"g": {"name": "mlp", "hidden": 16}, "e": {"name": "mlp", "hidden": 16},
                               "d": {"name": "mlp", "hidden": 16}})
    raw["optim"] = {"ge": {"name": "adam", "lr": 1e-3}, "d": {"name": "adam", "lr": 1e-3}}
    out = tmp_path_factory.mktemp("export") / "bigan"
    ganforge.train(raw, out=out)
    return out


def test_export_samples_equal_the_runs_ema_samples(ema_run, tmp_path, capsys):
    out = tmp_path / "exp"
    assert main(["export", str(ema_run), "--out", str(out)]) == 0
    assert "EMA weights" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "config.yaml", "manifest.json"}
    m = json.loads((out / "manifest.json").read_text())
    assert m["ema"] is True and m["step"] == 8 and list(m["roles"]) == ["g"]

    model = ganforge.load(out)
    for seed in (0, 7):
        torch.testing.assert_close(model.sample(300, seed=seed), ganforge.sample(ema_run, 300, seed=seed),
                                   rtol=0, atol=0)
    # the EMA copy really is what was exported: the raw generator samples differ
    raw_game, _, _ = ganforge.load_game(ema_run, use_ema=False)
    raw = raw_game.sample(300, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(raw, model.sample(300, seed=0))
    # --no-ema exports the raw generator, equal to it
    assert main(["export", str(ema_run), "--out", str(tmp_path / "raw"), "--no-ema"]) == 0
    torch.testing.assert_close(ganforge.load(tmp_path / "raw").sample(300, seed=0), raw, rtol=0, atol=0)


def test_loaded_model_has_no_training_state(ema_run, tmp_path):
    model = ganforge.load(ema_run)  # straight from the run directory, converted in memory
    assert set(model.game.nets) == {"g"}  # no critic
    assert model.game.data is None
    assert not any(p.requires_grad and p.grad is not None for p in model.game.parameters())
    assert not hasattr(model, "optimizers")
    assert model.shape == (2,) and model.z_dim == 4 and model.step == 8


def test_interpolate_and_generate(ema_run):
    model = ganforge.load(ema_run)
    z = model.latents(2, seed=3)
    path = model.interpolate(5, seed=3)
    assert path.shape == (5, 2)
    ends = model.generate(z)
    torch.testing.assert_close(path[[0, -1]], ends, rtol=1e-5, atol=1e-5)
    lin = model.interpolate(3, z0=z[0], z1=z[1], method="linear")
    torch.testing.assert_close(lin[1], model.generate(((z[0] + z[1]) / 2)[None])[0], rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="method must be slerp or linear"):
        model.interpolate(3, method="cubic")
    with pytest.raises(ConfigError, match="no encoder; games with one: bigan"):
        model.encode(torch.zeros(3, 2))


def test_bigan_export_encodes_like_the_run(bigan_run, tmp_path):
    from ganforge.export import export

    model = ganforge.load(export(bigan_run, tmp_path / "exp"))
    assert set(model.game.nets) == {"g", "e"}
    game, _, _ = ganforge.load_game(bigan_run)
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(model.encode(x), game.encode(x), rtol=0, atol=0)
    torch.testing.assert_close(model.sample(64, seed=2), ganforge.sample(bigan_run, 64, seed=2), rtol=0, atol=0)


def test_loading_never_unpickles(ema_run, tmp_path, monkeypatch):
    from ganforge.export import export

    out = export(ema_run, tmp_path / "exp")
    expected = ganforge.load(out).sample(10, seed=0)

    def refuse(*a, **k):
        raise AssertionError("loading an export must not unpickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    torch.testing.assert_close(ganforge.load(out).sample(10, seed=0), expected, rtol=0, atol=0)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_in_place_of_the_weights_is_refused_and_never_runs(ema_run, tmp_path):
    from ganforge.export import export

    out = export(ema_run, tmp_path / "exp")
    marker = tmp_path / "pwned"
    (out / "model.safetensors").write_bytes(pickle.dumps({"w": _Payload(marker)}))
    with pytest.raises(CheckpointError, match="does not match the SHA-256"):
        ganforge.load(out)
    m = json.loads((out / "manifest.json").read_text())
    del m["weights"]["sha256"]  # even without the checksum, safetensors does not unpickle
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(CheckpointError, match="cannot read"):
        ganforge.load(out)
    assert not marker.exists()


def test_bad_paths_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="no run directory or checkpoint"):
        ganforge.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="neither an export folder"):
        ganforge.load(tmp_path / "empty")
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "manifest.json").write_text('{"format": "something-else"}')
    with pytest.raises(CheckpointError, match="not a ganforge export manifest"):
        ganforge.load(tmp_path / "fake")


def test_conditional_generator_keeps_its_class_frequencies(tmp_path):
    from conftest import TINY

    from ganforge.export import export

    raw = with_overrides(TINY, data={"name": "digits"}, game={"name": "gan", "z_dim": 4, "conditional": True},
                         train={"steps": 2, "ema": 0.5})
    raw["data"] = {"name": "digits"}
    run = ganforge.train(raw, out=tmp_path / "run").run_dir
    model = ganforge.load(export(run, tmp_path / "exp"))
    assert model.game.class_freq.shape == (10,)
    torch.testing.assert_close(model.game.class_freq.sum(), torch.tensor(1.0))
    torch.testing.assert_close(model.sample(40, seed=4), ganforge.sample(run, 40, seed=4), rtol=0, atol=0)
    c = torch.arange(10)
    assert model.generate(model.latents(10, seed=0), c).shape == (10, *model.shape)
    assert model.interpolate(4, c=3).shape == (4, *model.shape)
    with pytest.raises(ConfigError, match="this generator is conditional: pass c"):
        model.generate(model.latents(2))


def test_translation_game_exports_both_generators(tmp_path):
    from conftest import TINY

    from ganforge.export import export

    raw = with_overrides(TINY, train={"steps": 2})
    raw["game"] = {"name": "cyclegan"}
    raw["data"] = {"name": "unpaired", "a": {"name": "ring", "n": 512}, "b": {"name": "grid", "n": 512}}
    raw["nets"] = {r: {"name": "mlp", "hidden": 16, "depth": 2} for r in ("g_ab", "g_ba", "d_a", "d_b")}
    raw["optim"] = {}
    run = ganforge.train(raw, out=tmp_path / "run").run_dir
    model = ganforge.load(export(run, tmp_path / "exp"))
    assert set(model.game.nets) == {"g_ab", "g_ba"}
    game, _, _ = ganforge.load_game(run)
    x = torch.randn(20, 2, generator=torch.Generator().manual_seed(0))
    for d in ("ab", "ba"):
        torch.testing.assert_close(model.translate(x, d), game.translate(x, d), rtol=0, atol=0)
    with pytest.raises(ConfigError, match=r"maps inputs rather than noise.*use translate\(x\)"):
        model.sample(4)
