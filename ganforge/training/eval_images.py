"""The trainer's figure for image data: a PNG grid of the first 64 evaluation samples.

The evaluation samples come from the trainer's fixed evaluation noise
(``eval.seed``), so the grids of successive evaluations show the same latent
codes as training goes on. Image *metrics* are a separate ``EVALUATORS`` entry.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ganforge.data.base import Dataset
from ganforge.imaging import save_grid
from ganforge.training.evaluation import EVALUATORS

GRID_SIZE = 64


def is_image(data: Dataset) -> bool:
    return data.is_image


def image_grid(data: Dataset, x: torch.Tensor, path: Path, title: str) -> None:
    """First 64 samples, 8 per row, pixels doubled below 64x64 so that the grid stays legible."""
    x = x[:GRID_SIZE]
    scale = 2 if max(x.shape[-2:]) < 64 else 1
    save_grid(x, path, nrow=8, scale=scale, caption=title)


EVALUATORS.append((is_image, None, image_grid))
