"""Shared parts of the adversarial domain-adaptation games (DANN, ADDA).

Data: a two-part dataset with parts ``source`` (labelled) and ``target``
(dataset ``adaptation``); the games read the target's images only, never its
labels. Evaluation: a classifier game has no samples in the GAN sense, so
``sample(n)`` returns its *predicted labels* (n, 1) on the first n images of
the labelled target evaluation set, and ``eval_reference()`` is that set's
labels as a dataset of kind ``labels``; the evaluator registered here turns the
pair into ``target_acc``. The trainer therefore evaluates these games like any
other, with no branch on their names.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.data.base import Dataset
from ganforge.errors import ConfigError
from ganforge.games.base import Game, Phase
from ganforge.training.evaluation import EVALUATORS


class GradReverse(torch.autograd.Function):
    """Gradient reversal layer (Ganin & Lempitsky 2015): identity forward, gradient * -lambda backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lam: float) -> torch.Tensor:  # noqa: D102
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        return -ctx.lam * grad, None


def grad_reverse(x: torch.Tensor, lam: float = 1.0) -> torch.Tensor:
    """R_lambda(x): forward x, backward -lambda * dL/dx."""
    return GradReverse.apply(x, float(lam))


def adaptation_parts(data: Dataset, game: str) -> tuple[Dataset, Dataset]:
    parts = data.info.get("parts") or {}
    if set(parts) != {"source", "target"}:
        raise ConfigError(f"game {game} needs data with parts source and target (dataset 'adaptation', e.g. "
                          f"data: {{name: adaptation, source: {{name: fmnist}}, target: {{name: fmnist-m}}}}); "
                          f"got {data.name!r}")
    src, tgt = parts["source"], parts["target"]
    if src.y is None or src.n_classes < 2:
        raise ConfigError(f"game {game}: the source part {src.name!r} must be labelled")
    return src, tgt


def labels_reference(data: Dataset) -> Dataset:
    """The target evaluation set as a ``labels`` dataset: x = labels (N, 1) float, inputs kept in info."""
    test = data.info.get("test") or data
    if test.y is None:
        return Dataset(name=f"{test.name} (unlabelled)", x=torch.zeros(0, 1), info={"kind": "labels"})
    return Dataset(name=f"{test.name} labels", x=test.y[:, None].float(), y=test.y, n_classes=test.n_classes,
                   class_names=test.class_names, info={"kind": "labels", "inputs": test})


def _is_labels(d: Dataset) -> bool:
    return d.info.get("kind") == "labels" and d.y is not None


def _accuracy(ref: Dataset, pred: torch.Tensor, ecfg=None) -> dict:
    n = min(len(pred), len(ref.y))
    return {"target_acc": float((pred[:n, 0].long() == ref.y[:n]).float().mean())}


EVALUATORS.append((_is_labels, _accuracy, None))


class AdaptationGame(Game):
    """Base of DANN and ADDA: a classifier ``predict(x)`` used by ``sample`` (see the module docstring)."""

    def eval_reference(self) -> Dataset:
        return self._labels_ref

    def set_data(self, data: Dataset) -> tuple[Dataset, Dataset]:
        src, tgt = adaptation_parts(data, type(self).__name__.lower())
        self.data = data
        self._labels_ref = labels_reference(data)
        return src, tgt

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, x: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
        """Class predictions (N,) for float network inputs x (eval mode, on CPU)."""
        was = self.training
        self.eval()
        out = [self.logits(x[i:i + batch_size].to(self.device)).argmax(1).cpu() for i in range(0, len(x), batch_size)]
        self.train(was)
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)

    @torch.no_grad()
    def accuracy(self, d: Dataset, *, batch_size: int = 1000) -> float:
        """Accuracy on a labelled dataset (stored form, converted by ``d.to_model``)."""
        correct = 0
        for i in range(0, len(d), batch_size):
            pred = self.predict(d.to_model(d.x[i:i + batch_size]))
            correct += int((pred == d.y[i:i + batch_size]).sum())
        return correct / max(1, len(d))

    @torch.no_grad()
    def sample(self, n, *, generator=None, c=None, batch_size=1024):
        """Predicted labels (n, 1) on the first n target evaluation images (the ``labels`` reference)."""
        inputs = self._labels_ref.info.get("inputs")
        if inputs is None:
            return torch.zeros(0, 1)
        n = min(n, len(inputs))
        return self.predict(inputs.to_model(inputs.x[:n]), batch_size=batch_size)[:, None].float()


class Counted(nn.Module):
    """Nothing but a step counter buffer, so that it goes through state_dict into checkpoints."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def tick(self) -> None:
        self.count += 1

    def __int__(self) -> int:
        return int(self.count)


class GatedPhase(Phase):
    """A phase that runs only while ``active()`` holds: the trainer reads ``repeat`` (0 when inactive) each step.

    The switch is part of the game's declared data (a function of the game's own step
    counter, which is checkpointed), so a resumed run switches at the same step.
    """

    def __init__(self, *args, active, **kwargs) -> None:
        self._active = active
        super().__init__(*args, **kwargs)

    @property
    def repeat(self) -> int:  # type: ignore[override]
        return self._repeat if self._active() else 0

    @repeat.setter
    def repeat(self, value: int) -> None:
        self._repeat = value
