"""Importing this module fills every registry (objectives, nets, datasets, games, ...).

Nothing heavy happens here: component modules import optional dependencies
lazily inside the functions that need them.
"""

import importlib

_MODULES = (
    "ganforge.objectives",
    "ganforge.penalties",
    "ganforge.nets",
    "ganforge.data",
    "ganforge.games",
    "ganforge.training.optim",
    "ganforge.training.eval_images",
    "ganforge.training.eval_metrics",
    "ganforge.training.tensorboard",
    "ganforge.metrics",
    "ganforge.lab",
    "ganforge.bench",
)

for _m in _MODULES:
    importlib.import_module(_m)
