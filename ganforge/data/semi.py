"""Semi-supervised data: a few labelled images per class plus the whole set unlabelled (Salimans et al. 2016).

``semi`` builds any labelled dataset (Fashion-MNIST by default), draws
``labels_per_class`` images of every class with a seeded generator, and
returns two parts streamed independently (``MultiStream``):

- ``labelled``: those images with their labels (K * labels_per_class of them);
- ``unlabelled``: every image of the set *without* labels (y = None), as in
  the paper, where the labelled examples are also part of the unlabelled pool.

The returned dataset's own x is the full image set with no labels, so nothing
downstream can read a label that the protocol withholds.
"""

from __future__ import annotations

import torch

from ganforge.data.base import Dataset
from ganforge.errors import ConfigError
from ganforge.registry import DATASETS


def pick_labelled(y: torch.Tensor, n_classes: int, per_class: int, seed: int) -> torch.Tensor:
    """Indices of ``per_class`` examples of each class, chosen by a seeded permutation (sorted)."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=g)
    chosen = []
    for k in range(n_classes):
        idx = perm[y[perm] == k][:per_class]
        if len(idx) < per_class:
            raise ConfigError(f"semi: class {k} has only {len(idx)} examples, fewer than labels_per_class="
                              f"{per_class}")
        chosen.append(idx)
    return torch.cat(chosen).sort().values


@DATASETS.register("semi")
def semi(*, data: dict | None = None, labels_per_class: int = 100, seed: int = 0) -> Dataset:
    """Semi-supervised split of a labelled set: labels_per_class labelled images per class + all images unlabelled."""
    spec = dict(data or {"name": "fmnist"})
    if "name" not in spec:
        raise ConfigError(f"semi: data must be a dataset section like {{name: fmnist}}, got {data!r}")
    if labels_per_class < 1:
        raise ConfigError(f"semi: labels_per_class must be >= 1, got {labels_per_class}")
    try:
        full = DATASETS.build(spec.pop("name"), **spec)
    except ConfigError as e:
        raise ConfigError(f"data.data: {e}") from None
    if full.y is None or full.n_classes < 2:
        raise ConfigError(f"semi needs a labelled dataset; {full.name!r} has no labels")
    idx = pick_labelled(full.y, full.n_classes, labels_per_class, seed)
    labelled = Dataset(name=f"{full.name}-labelled", x=full.x[idx], y=full.y[idx], n_classes=full.n_classes,
                       class_names=full.class_names, info={"indices": idx})
    unlabelled = Dataset(name=f"{full.name}-unlabelled", x=full.x, n_classes=full.n_classes,
                         class_names=full.class_names)
    return Dataset(name=f"semi({full.name},{labels_per_class}/class)", x=full.x, n_classes=full.n_classes,
                   class_names=full.class_names, info={"parts": {"labelled": labelled, "unlabelled": unlabelled},
                                                       "labels_per_class": labels_per_class})
