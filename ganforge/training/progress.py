"""What a person watching a run sees: the bar's postfix and one line per evaluation.

The bar (tqdm, on stderr, only on a terminal) shows the latest mean losses and
the latest evaluation's metrics side by side; each evaluation during training
also prints one line (``step 500: fid 7.34, kid 0.0021 +- 0.0003 (n=2000)``),
so a score taken every few hundred steps is never only in metrics.jsonl.
"""

from __future__ import annotations

import math
import sys
from typing import Any

_SKIP = ("step", "time", "protocol")


def short(v: Any) -> str:
    """A number in at most 3-4 significant digits; ints and strings as they are; None as n/a."""
    if v is None:
        return "n/a"
    if isinstance(v, bool) or not isinstance(v, float):
        return str(v)
    if not math.isfinite(v):
        return str(v)
    return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


def scalars(rec: dict) -> dict[str, Any]:
    """The numeric (or None) entries of a log record, without step/time and the *_std spreads."""
    keys = set(rec)
    return {k: v for k, v in rec.items()
            if k not in _SKIP and not (k.endswith("_std") and k[:-4] in keys)
            and (v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)))}


def postfix(losses: dict, metrics: dict) -> dict[str, str]:
    """The bar's postfix: the mean losses of the last log window, then the latest evaluation's metrics."""
    out = {k: short(v) for k, v in scalars(losses).items()}
    out.update({k: short(v) for k, v in scalars(metrics).items()})
    return out


def metrics_text(rec: dict) -> str:
    """``fid 7.34, kid 0.0021 +- 0.0003, modes 8``: every metric of a record, spreads beside their value."""
    parts = []
    for k, v in scalars(rec).items():
        spread = rec.get(f"{k}_std")
        parts.append(f"{k} {short(v)}" + (f" +- {short(spread)}" if isinstance(spread, float) else ""))
    return ", ".join(parts) or "no metrics"


def eval_line(step: int, rec: dict, n: int) -> str:
    return f"step {step}: {metrics_text(rec)} (n={n} samples)"


def show_eval(bar, step: int, rec: dict, n: int) -> None:
    """Print one evaluation's line above the bar (or on its own without one)."""
    line = eval_line(step, rec, n)
    if bar is not None:
        bar.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr, flush=True)


class Progress:
    """The trainer's view of one run: a tqdm bar on a terminal, plain lines otherwise.

    ``update(k)`` advances, ``losses(means)`` refreshes the postfix, ``evaluated(step, metrics)`` prints the
    evaluation's line and keeps its metrics in the postfix, ``close()`` ends the bar.
    """

    def __init__(self, total: int, initial: int, desc: str, eval_n: int):
        self.eval_n, self.metrics, self._losses = eval_n, {}, {}
        self.bar = None
        if sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, unit="step")

    def update(self, k: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(k)

    def losses(self, means: dict) -> None:
        self._losses = means
        if self.bar is not None:
            self.bar.set_postfix(postfix(means, self.metrics), refresh=False)

    def evaluated(self, step: int, metrics: dict) -> None:
        if not metrics:
            return
        self.metrics = metrics
        show_eval(self.bar, step, metrics, self.eval_n)
        self.losses(self._losses)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
