"""Registries and typed configs: bad input is a ConfigError that says what was wrong and what is valid."""

from __future__ import annotations

import copy
import dataclasses
import inspect

import pytest
import yaml
from conftest import TINY

import ganforge.components  # noqa: F401  (fills the registries the tables below name)
from ganforge.config import TrainConfig, load_config, resolve
from ganforge.errors import ConfigError
from ganforge.registry import OBJECTIVES, OPTIMIZERS, Registry

TRAIN_KEYS = ", ".join(f.name for f in dataclasses.fields(TrainConfig))


# ------------------------------------------------------------------------------ registry
def test_registry_duplicate_and_unknown_names():
    reg = Registry("widget")

    @reg.register("round")
    def round_widget(*, size: int = 1):
        """A round widget.

        More text."""
        return ("round", size)

    reg.add("square", lambda *, size=2: ("square", size), help="A square one")
    with pytest.raises(ValueError, match="widget 'round' is already registered"):
        reg.add("round", round_widget)
    assert reg.names() == ["round", "square"] and "round" in reg and len(reg) == 2
    assert reg.help("round") == "A round widget." and reg.help("square") == "A square one"
    assert reg.build("round", size=3) == ("round", 3)
    with pytest.raises(ConfigError) as e:
        reg.get("rond")
    assert str(e.value) == "unknown widget 'rond'. Did you mean 'round'? Valid widgets: round, square"
    with pytest.raises(ConfigError) as e:
        reg.get("triangle")
    assert str(e.value) == "unknown widget 'triangle'. Valid widgets: round, square"
    with pytest.raises(ConfigError, match=r"widget 'round' has no parameter 'colour'. Valid parameters: size"):
        reg.build("round", colour="red")


def test_registry_explains_deliberate_non_names():
    reg = Registry("policy")
    reg.add("a", lambda: 1)
    reg.explain("default", "there is no default policy: pick one.")
    with pytest.raises(ConfigError, match=r"unknown policy 'default'. there is no default policy: pick one\. "
                                          r"Valid policies: a"):
        reg.get("default")


def test_every_registered_objective_builds_with_defaults():
    for name in OBJECTIVES.names():
        obj = OBJECTIVES.build(name)
        assert callable(obj.d_loss) and callable(obj.g_loss)


# ------------------------------------------------------------------------------ config: good input
def test_resolve_fills_every_default_and_is_idempotent():
    cfg = resolve({"data": {"name": "ring"}})
    assert cfg.train == TrainConfig()
    assert cfg["objective"] == {"name": "ns", "smoothing": 0.0}
    assert cfg["game"]["name"] == "gan" and set(cfg["nets"]) == {"g", "d"} and set(cfg["optim"]) == {"g", "d"}
    assert cfg["optim"]["d"] == {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999], "eps": 1e-8,
                                 "weight_decay": 0.0}
    again = resolve(yaml.safe_load(cfg.to_yaml()))
    assert again.data == cfg.data


def test_overrides_are_coerced_to_the_declared_types():
    cfg = load_config(None, ["--train.steps=1e3", "--optim.g.lr=1e-4", "--train.grad_clip=null",
                             "--objective.name=mmd", "--objective.sigmas=[1, 2]", "--eval.samples=false",
                             "--name=my run", "--train.ema=0.99", "--penalties.gp=10"], base=TINY)
    assert cfg.train.steps == 1000 and isinstance(cfg.train.steps, int)
    assert cfg["optim"]["g"]["lr"] == 1e-4 and isinstance(cfg["optim"]["g"]["lr"], float)
    assert cfg.train.grad_clip is None and cfg.train.ema == 0.99
    assert cfg["objective"]["sigmas"] == [1.0, 2.0] and all(isinstance(s, float) for s in cfg["objective"]["sigmas"])
    assert cfg.eval.samples is False and cfg["name"] == "my run"
    assert cfg["penalties"] == {"gp": {"weight": 10.0, "one_sided": False, "target": 1.0}}


def test_switching_a_component_drops_its_old_parameters(tmp_path):
    raw = copy.deepcopy(TINY)
    raw["objective"] = {"name": "lsgan", "a": -1.0, "b": 1.0, "c": 0.0}
    p = tmp_path / "ls.yaml"
    p.write_text(yaml.safe_dump(raw))
    assert load_config(p)["objective"] == {"name": "lsgan", "a": -1.0, "b": 1.0, "c": 0.0}
    assert load_config(p, ["--objective.name=hinge"])["objective"] == {"name": "hinge"}
    assert load_config(p, ["--objective.c=0.5"])["objective"]["c"] == 0.5


def test_a_games_default_net_parameters_apply_only_to_its_default_net():
    """dann's default f is conv-encoder with hidden 0: naming mlp for f must not inherit hidden 0, while
    naming the default net (c: mlp) keeps the game's width and takes the user's keys on top."""
    from ganforge.registry import NETS

    base = {"name": "t", "game": {"name": "dann"}, "data": {"name": "adaptation"}}
    cfg = load_config(base={**base, "nets": {"f": {"name": "mlp"}, "c": {"name": "mlp", "depth": 3}}})
    mlp_default = inspect.signature(NETS.get("mlp")).parameters["hidden"].default
    assert cfg["nets"]["f"]["hidden"] == mlp_default != 0
    assert cfg["nets"]["c"]["hidden"] == 100 and cfg["nets"]["c"]["depth"] == 3


def test_base_include(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(TINY))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "child.yaml").write_text("base: ../base.yaml\nname: child\ntrain: {steps: 9}\n"
                                    "objective: {name: hinge}\nnets: {d: {hidden: 8}}\n")
    cfg = load_config(sub / "child.yaml")
    assert cfg["name"] == "child" and cfg.train.steps == 9 and cfg.train.batch_size == TINY["train"]["batch_size"]
    assert cfg["objective"] == {"name": "hinge"}
    assert cfg["nets"]["d"]["hidden"] == 8 and cfg["nets"]["d"]["depth"] == 2  # merged, not replaced
    (tmp_path / "broken.yaml").write_text("base: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="config file not found: .*nowhere.yaml"):
        load_config(tmp_path / "broken.yaml")


# ------------------------------------------------------------------------------ config: bad input
BAD = [  # (overrides on TINY, message fragments)
    (["--train.stepz=5"], ["unknown key train.stepz", f"Valid keys: {TRAIN_KEYS}"]),
    (["--trian.steps=5"], ["unknown config key 'trian.steps'", "Valid sections: name, game, data, objective"]),
    (["--objective.margin=2"], ["unknown key objective.margin for objective 'ns'", "Valid keys: name, smoothing"]),
    (["--train.steps=abc"], ["train.steps must be an integer, got 'abc'"]),
    (["--train.steps=2.5"], ["train.steps must be an integer, got 2.5"]),
    (["--eval.samples=3"], ["eval.samples must be true or false, got 3"]),
    (["--optim.g.lr=fast"], ["optim.g.lr must be a number, got 'fast'"]),
    (["--objective.name=hinj"], ["objective.name: unknown objective 'hinj'", "Did you mean 'hinge'?",
                                 "Valid objectives: alpha, ebgan"]),
    (["--objective.name=vanilla"], ["'vanilla' is ambiguous", "'minimax'", "'ns'"]),
    (["--data.name=rign"], ["unknown dataset 'rign'", "Did you mean 'ring'?", "Valid datasets:"]),
    (["--game.name=gam"], ["unknown game 'gam'", "Valid games:", "bigan", "cyclegan"]),
    (["--nets.g.name=mpl"], ["nets.g.name: unknown net 'mpl'", "Valid nets:"]),
    (["--optim.g.name=adamz"], ["unknown optimizer 'adamz'", f"Valid optimizers: {', '.join(OPTIMIZERS.names())}"]),
    (["--nets.e.hidden=3"], ["unknown net role nets.e for game 'gan'", "Valid roles: g, d"]),
    (["--optim.ge.lr=0.1"], ["unknown optimizer group optim.ge for game 'gan'", "Valid groups: d, g"]),
    (["--penalties.r3=1"], ["unknown penalty 'r3'", "Valid penalties:"]),
    (["--penalties.gp=-1"], ["penalties.gp.weight must be >= 0, got -1.0"]),
    (["--train.steps=-5"], ["train.steps must be >= 0, got -5"]),
    (["--train.batch_size=0"], ["train.batch_size must be >= 1, got 0"]),
    (["--train.ema=1.5"], ["train.ema must be in (0, 1) or null, got 1.5"]),
    (["--checkpoint.keep=0"], ["checkpoint.keep must be >= 1, got 0"]),
    (["train.steps"], ["override 'train.steps' must look like --section.key=value"]),
    # ranges checked by the component's own factory, at resolve time (so --dry-run catches them too)
    (["--objective.name=alpha", "--objective.alpha=1"], ["objective: alpha must be a finite number other than 0 "
                                                         "and 1", "got 1.0"]),
    (["--objective.name=ebgan", "--objective.margin=-1"], ["objective: margin must be > 0, got -1.0"]),
    (["--penalties.gp.weight=1", "--penalties.gp.target=0"], ["penalties.gp: gp target norm must be > 0"]),
]


@pytest.mark.parametrize("overrides,fragments", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_input_is_a_config_error_that_names_the_problem(overrides, fragments):
    with pytest.raises(ConfigError) as e:
        load_config(None, overrides, base=TINY)
    for frag in fragments:
        assert frag in str(e.value), f"{frag!r} not in {str(e.value)!r}"


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match=r"config file not found: .*missing\.yaml"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=r"config file not found: .* \(it is a directory\)"):
        load_config(tmp_path)
    (tmp_path / "bad.yaml").write_text("train: {steps: [1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml is not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"must hold a mapping of sections, got list"):
        load_config(tmp_path / "list.yaml")
    (tmp_path / "key.yaml").write_text("train: {steps: 5}\noptimiser: {lr: 1}\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'optimiser'. Valid sections: .*optim"):
        load_config(tmp_path / "key.yaml")
    (tmp_path / "neg.yaml").write_text("train: {steps: -1}\n")
    with pytest.raises(ConfigError, match=r"train.steps must be >= 0, got -1"):
        load_config(tmp_path / "neg.yaml")


def test_component_parameter_validation_happens_at_resolve_time():
    with pytest.raises(ConfigError, match=r"objective.alpha must be a number, got 'x'"):
        load_config(None, ["--objective.name=alpha", "--objective.alpha=x"], base=TINY)
    with pytest.raises(ConfigError, match=r"unknown key data.radius for dataset 'grid'.*Valid keys: name, side"):
        load_config(None, ["--data.name=grid", "--data.radius=2"], base=TINY)


def test_child_recipes_drop_the_base_penalty_with_null() -> None:
    """configs/fmnist/dcgan.yaml adds lazy R1 and channels_last (issue 14); the recipes built on it keep their
    measured settings by `penalties: null` (a mapping would merge into the base's) and `channels_last: false`;
    the 32 px DCGAN keeps the base's optimizer and R1, the 32 px resnet-SN drops the R1."""
    from pathlib import Path

    root = Path(__file__).parents[1] / "configs"
    base = load_config(root / "fmnist" / "dcgan.yaml")
    assert base.data["penalties"] == {"r1-lazy": {"weight": 0.1, "every": 16}} and base.train.channels_last
    cfg = load_config(root / "fmnist" / "cdcgan.yaml")
    assert cfg.data["penalties"] == {} and not cfg.train.channels_last
    # the 32 px DCGAN is the 28 px recipe (R1 included) at batch 16; resnet-SN's critic has spectral norm instead
    d32, r32 = load_config(root / "fmnist32" / "dcgan.yaml"), load_config(root / "fmnist32" / "resnet-sn.yaml")
    assert d32.data["penalties"] == base.data["penalties"] and d32.data["optim"] == base.data["optim"]
    assert r32.data["penalties"] == {} and r32.data["nets"]["d"]["spectral_norm"]
    # resnet-SN decays its lr over the whole run (SNGAN's schedule), DCGAN over the second half
    assert (r32.train.lr_decay_start, r32.train.lr_decay_steps) == (0, r32.train.steps)
    assert d32.train.lr_decay_start + d32.train.lr_decay_steps == d32.train.steps
