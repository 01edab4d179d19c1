"""Data sources: toy densities, images. ``build_dataset(name, **params)``."""

from ganforge.data import domains, fmnist, fmnist_m, images, paired, semi, tabular, toy, unpaired  # noqa: F401  (register)
from ganforge.data.base import BatchStream, Dataset, Density, MultiStream, make_stream
from ganforge.registry import DATASETS


def build_dataset(name: str, **params) -> Dataset:
    import ganforge.components  # noqa: F401  (fills the registries)

    return DATASETS.build(name, **params)


__all__ = ["BatchStream", "MultiStream", "Dataset", "Density", "build_dataset", "make_stream", "DATASETS"]
