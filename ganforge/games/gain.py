"""GAIN: generative adversarial imputation nets (Yoon, Jordon & van der Schaar, ICML 2018).

Data: a table scaled to [0, 1] with a mask m (1 observed, 0 missing), dataset
``tabular``; a batch is ``{"x": (B, d), "m": (B, d)}``. The generator fills the
missing entries, the discriminator guesses, entry by entry, which entries were
observed, helped by a hint h:

    x~ = m * x + (1 - m) * u,           u ~ U(0, noise)            (noise 0.01 as the authors' code)
    x^ = m * x + (1 - m) * G(x~, m)                                  (paper eq. 2-3)
    b ~ Bernoulli(hint_rate) per entry,  h = b * m + 0.5 * (1 - b)   (paper Sec. 4, eq. 6 with per-entry b)
    D(x^, h) -> one logit per entry, larger = "observed"

The variant implemented, exactly:

- Hint: the paper's form h = b m + 0.5 (1 - b) (an unrevealed entry reads 0.5), with b drawn per entry
  from Bernoulli(hint_rate) as in the authors' code (the paper draws one unrevealed entry per row; their
  code uses h = b m, which leaves "missing" and "unrevealed" both at 0).
- D loss: the per-entry cross-entropy over *all* entries (the authors' code), on logits: mean over
  entries of m softplus(-l) + (1 - m) softplus(l). ``loss_on: unrevealed`` counts only the entries whose
  hint is 0.5, in D's and in G's adversarial term (the paper's eq. 5 and its G loss).
- ``hint_rate`` defaults to the paper's 0.9; the recipe (configs/gain/breast_cancer.yaml) uses 0.2, which
  imputed better in our runs (with D's loss on every entry, a 0.9 hint leaves D little to learn).
- G loss: adversarial term on the missing entries only, the non-saturating -log D written as
  softplus(-l), averaged over the missing entries (sum (1 - m) softplus(-l) / sum (1 - m); the authors'
  code averages over all entries, which weighs it by the missing rate), plus ``alpha`` times the
  reconstruction MSE on the observed entries (sum m (G - x)^2 / sum m, as their code; alpha = 100 there).

D and G are ``G(x~, c=m)`` and ``D(x^, c=h)``: any net taking a (B, d) condition, e.g. ``mlp`` (it
concatenates the condition to the input). G's default net ends in a sigmoid (data in [0, 1]). The
objective must be ``ns``: the losses above are its cross-entropy applied per entry.

Evaluation: GAIN has no unconditional samples; ``sample(n)`` returns the imputed rows 0..n-1 of the
training table (row i mod N), and the evaluator registered here scores them against the entries the data
hid (``rmse``, Yoon et al.'s [0, 1]-scaled RMSE, beside mean imputation's ``rmse_mean``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.data.base import Dataset
from ganforge.data.tabular import MinMaxScaler, mean_impute, scaled_rmse
from ganforge.errors import ConfigError
from ganforge.games.base import Game, Phase
from ganforge.registry import GAMES
from ganforge.training.evaluation import EVALUATORS

#: The recipe ``ganforge impute`` trains when given no --config (configs/gain/breast_cancer.yaml less its data).
DEFAULT_RECIPE: dict = {
    "game": {"name": "gain", "alpha": 100.0, "hint_rate": 0.2, "noise": 0.01, "loss_on": "all"},
    "objective": {"name": "ns"},
    "nets": {"g": {"name": "mlp", "hidden": 16, "depth": 2, "out_activation": "sigmoid"},
             "d": {"name": "mlp", "hidden": 16, "depth": 2}},
    "optim": {"g": {"name": "adam", "lr": 1.0e-3, "betas": [0.9, 0.999]},
              "d": {"name": "adam", "lr": 1.0e-3, "betas": [0.9, 0.999]}},
    "train": {"steps": 500, "batch_size": 128},
}

#: Which entries the adversarial losses count: "all" (the authors' code), "unrevealed" (the paper: hint 0.5 only).
LOSS_ON = ("all", "unrevealed")


# -- the losses, pure functions of logits and masks ----------------------------------------
def d_entry_loss(logits: torch.Tensor, m: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
    """-mean[m log D + (1 - m) log(1 - D)] over the entries (those with weight ``w`` = 1), D = sigmoid(logits)."""
    ce = m * F.softplus(-logits) + (1 - m) * F.softplus(logits)
    return ce.mean() if w is None else (w * ce).sum() / w.sum().clamp_min(1)


def g_adversarial_loss(logits: torch.Tensor, m: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
    """-mean of log D over the missing entries (with weight ``w`` = 1): sum (1 - m) softplus(-l) / sum (1 - m).

    0 when no entry counts.
    """
    miss = 1 - m if w is None else (1 - m) * w
    return (miss * F.softplus(-logits)).sum() / miss.sum().clamp_min(1)


def reconstruction_loss(g_out: torch.Tensor, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Mean squared error of G on the observed entries: sum m (G - x)^2 / sum m."""
    return (m * (g_out - x) ** 2).sum() / m.sum().clamp_min(1)


def make_hint(m: torch.Tensor, rate: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """h = b m + 0.5 (1 - b), b ~ Bernoulli(rate) per entry (drawn on CPU when ``generator`` is given)."""
    u = torch.rand(m.shape, generator=generator, device="cpu" if generator is not None else m.device)
    b = (u.to(m.device) < rate).to(m.dtype)
    return b * m + 0.5 * (1 - b)


@GAMES.register("gain")
class GAIN(Game):
    """GAIN imputation: G fills missing table entries, D guesses the mask with a hint (Yoon et al. 2018)."""

    roles = {"g": "imputer (x~, c=m) -> x in [0, 1]^d", "d": "mask guesser (x^, c=hint) -> logit per entry"}
    groups = {"d": ("d",), "g": ("g",)}
    ema_roles = ("g",)

    def __init__(self, *, alpha: float = 100.0, hint_rate: float = 0.9, noise: float = 0.01,
                 loss_on: str = "all") -> None:
        super().__init__()
        checks = [
            (alpha >= 0, f"alpha (weight of the reconstruction MSE) must be >= 0, got {alpha}"),
            (0 <= hint_rate <= 1, f"hint_rate (probability that an entry's mask is revealed) must lie in [0, 1], "
                                  f"got {hint_rate}"),
            (noise >= 0, f"noise (upper end of the U(0, noise) filling missing inputs) must be >= 0, got {noise}"),
            (loss_on in LOSS_ON, f"loss_on must be one of {', '.join(LOSS_ON)}, got {loss_on!r}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)
        self.alpha, self.hint_rate, self.noise_scale, self.loss_on = alpha, hint_rate, noise, loss_on

    @classmethod
    def default_nets(cls) -> dict[str, dict]:
        """Two-hidden-layer MLPs as the paper; G ends in a sigmoid."""
        return {"g": {"name": "mlp", "hidden": 64, "depth": 2, "out_activation": "sigmoid"},
                "d": {"name": "mlp", "hidden": 64, "depth": 2}}

    def build(self, data, nets, objective, penalties) -> None:
        if "m" not in data.info.get("paired", {}) or len(data.shape) != 1:
            raise ConfigError(f"game gain imputes tables: it needs data with a missing-value mask (dataset "
                              f"tabular, e.g. data: {{name: tabular, table: breast_cancer}}); got {data.name!r}")
        if getattr(objective, "name", None) != "ns" or getattr(objective, "smoothing", 0.0):
            raise ConfigError(f"game gain's losses are the per-entry cross-entropy of Yoon et al. (objective ns "
                              f"without smoothing); got objective {objective!r}")
        if penalties:
            raise ConfigError(f"game gain takes no penalties; got {', '.join(n for n, _, _ in penalties)}")
        self.data, self.objective, self.penalties = data, objective, penalties
        d = data.shape[0]
        self.nets["g"] = self._net("g", nets["g"], in_shape=(d,), out_shape=(d,), n_classes=d)
        self.nets["d"] = self._net("d", nets["d"], in_shape=(d,), out_shape=(d,), n_classes=d)

    def phases(self, *, d_steps: int = 1) -> list[Phase]:
        return [Phase("d", "d", self.d_loss, repeat=d_steps), Phase("g", "g", self.g_loss)]

    # -- the game ------------------------------------------------------------------------
    def corrupt(self, x: torch.Tensor, m: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x~ = m x + (1 - m) u, u ~ U(0, noise): G's input, the missing entries filled with small noise."""
        u = torch.rand(x.shape, generator=generator, device="cpu" if generator is not None else x.device)
        return m * x + (1 - m) * u.to(x.device) * self.noise_scale

    def hint(self, m: torch.Tensor) -> torch.Tensor:
        return make_hint(m, self.hint_rate)

    def counted(self, h: torch.Tensor) -> torch.Tensor | None:
        """The entries the adversarial losses count: all (None), or the unrevealed ones (hint 0.5)."""
        return None if self.loss_on == "all" else (h == 0.5).to(h.dtype)

    def d_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        x, m = batch["x"], batch["m"]
        with torch.no_grad():
            x_hat = m * x + (1 - m) * self.nets["g"](self.corrupt(x, m), m)
        h = self.hint(m)
        loss = d_entry_loss(self.nets["d"](x_hat, h), m, self.counted(h))
        return loss, {"d_loss": float(loss.detach())}

    def g_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        x, m = batch["x"], batch["m"]
        g_out = self.nets["g"](self.corrupt(x, m), m)
        x_hat = m * x + (1 - m) * g_out
        h = self.hint(m)
        adv = g_adversarial_loss(self.nets["d"](x_hat, h), m, self.counted(h))
        rec = reconstruction_loss(g_out, x, m)
        return adv + self.alpha * rec, {"g_adv": float(adv.detach()), "mse_observed": float(rec.detach())}

    # -- imputation ----------------------------------------------------------------------
    @torch.no_grad()
    def impute(self, x: torch.Tensor, m: torch.Tensor, *, generator: torch.Generator | None = None,
               batch_size: int = 1024) -> torch.Tensor:
        """Scaled rows x (N, d) with mask m -> x^ = m x + (1 - m) G(x~, m), eval mode, on CPU.

        Observed entries are returned bit for bit as given; missing ones (whatever x holds there) are G's.
        """
        x, m = x.float().cpu(), m.float().cpu()
        g = self.sampling_net("g", lambda n, gen: (self.corrupt(x[:n], m[:n], gen).to(self.device),
                                                   m[:n].to(self.device)))
        out = []
        for i in range(0, len(x), batch_size):
            xb, mb = x[i:i + batch_size], m[i:i + batch_size]
            gb = g(self.corrupt(xb, mb, generator).to(self.device), mb.to(self.device)).cpu()
            out.append(torch.where(mb.bool(), xb, gb))
        return torch.cat(out) if out else x.clone()

    @torch.no_grad()
    def impute_values(self, values: np.ndarray, *, scaler: MinMaxScaler | None = None,
                      generator: torch.Generator | None = None) -> np.ndarray:
        """A table in its own units, NaN where missing (N, d) -> completed; observed values returned exactly."""
        scaler = scaler or self.data.info["scaler"]
        miss = np.isnan(values)
        x = torch.as_tensor(np.where(miss, 0.0, scaler.scale(np.nan_to_num(values))), dtype=torch.float32)
        x_hat = self.impute(x, torch.as_tensor(~miss, dtype=torch.float32), generator=generator)
        return np.where(miss, scaler.unscale(x_hat.double().numpy()), values)

    @torch.no_grad()
    def sample(self, n, *, generator=None, c=None, batch_size=1024):
        """The imputed training rows 0..n-1 (row i mod N), scaled; see the module docstring."""
        rows = torch.arange(n) % len(self.data)
        return self.impute(self.data.x[rows], self.data.info["paired"]["m"][rows], generator=generator,
                           batch_size=batch_size)


def _has_hidden_truth(data: Dataset) -> bool:
    return data.info.get("kind") == "tabular" and bool(np.any(data.info.get("hidden", False)))


def _rmse(data: Dataset, x: torch.Tensor, ecfg=None) -> dict:
    """GAIN's imputation of the first rows against the entries the data hid, beside mean imputation."""
    n = min(len(x), len(data))
    info = data.info
    truth, hidden = info["truth"][:n], info["hidden"][:n]
    if not hidden.any():
        return {}
    imputed = info["scaler"].unscale(x[:n].double().numpy())
    mean_fill = mean_impute(np.where(info["hidden"], np.nan, info["truth"]))[:n]
    full = info["truth"]  # the scale: every row's truth, however many rows were imputed
    return {"rmse": scaled_rmse(imputed, truth, hidden, scale_by=full),
            "rmse_mean": scaled_rmse(mean_fill, truth, hidden, scale_by=full)}


EVALUATORS.append((_has_hidden_truth, _rmse, None))
