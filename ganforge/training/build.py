"""Config -> live objects: dataset, objective, penalties, game (with nets), optimizers."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ganforge.config import Config
from ganforge.data.base import Dataset
from ganforge.errors import ConfigError
from ganforge.games.base import Game
from ganforge.penalties import build_penalties
from ganforge.registry import DATASETS, GAMES, OBJECTIVES, OPTIMIZERS


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r} but CUDA is not available here. Valid: auto, cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device={name!r} is not a device. Valid: auto, cpu, cuda, cuda:N") from None


def _component(section: dict):
    s = dict(section)
    return s.pop("name"), s


@dataclass
class Built:
    data: Dataset
    game: Game
    optimizers: dict[str, torch.optim.Optimizer]
    device: torch.device


def build_data(cfg: Config) -> Dataset:
    name, params = _component(cfg["data"])
    return DATASETS.build(name, **params)


def build_game(cfg: Config, data: Dataset | None = None, device: torch.device | None = None) -> Game:
    """The game with its nets for ``cfg`` (data built when not given), on ``device``."""
    data = data if data is not None else build_data(cfg)
    oname, oparams = _component(cfg["objective"])
    objective = OBJECTIVES.build(oname, **oparams)
    penalties = build_penalties(cfg["penalties"], objective)
    gname, gparams = _component(cfg["game"])
    game = GAMES.build(gname, **gparams)
    game.build(data, cfg["nets"], objective, penalties)
    return game.to(device or torch.device("cpu"))


def build_optimizers(cfg: Config, game: Game) -> dict[str, torch.optim.Optimizer]:
    opts = {}
    for group, roles in game.groups.items():
        params = [p for r in roles for p in game.nets[r].parameters()]
        name, kw = _component(cfg["optim"][group])
        factory = OPTIMIZERS.get(name)
        try:
            opts[group] = factory(params, **kw)
        except ConfigError as e:
            raise ConfigError(f"optim.{group}: {e}") from None
    return opts


def group_params(game: Game, group: str) -> list[nn.Parameter]:
    return [p for r in game.groups[group] for p in game.nets[r].parameters()]


def build(cfg: Config) -> Built:
    device = pick_device(cfg.train.device)
    data = build_data(cfg)
    game = build_game(cfg, data, device)
    return Built(data=data, game=game, optimizers=build_optimizers(cfg, game), device=device)
