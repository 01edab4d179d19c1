"""Numeric tables with missing entries, for imputation (GAIN, ``ganforge impute``).

A table comes from scikit-learn's bundled sets (``breast_cancer``, ``wine``,
``diabetes``, ``iris``: their feature columns, read offline) or from any CSV
file of numeric columns. Missing cells of a CSV are empty or one of
``MISSING_TOKENS`` (NA, NaN, ?, ...). The first row is a header when any of its
cells is not a number; otherwise the file has none and the columns are named
c0, c1, ...

On top of the table's own missing cells, ``missing_rate`` hides each observed
entry independently with that probability (MCAR), seeded by ``seed``; the
hidden values are kept as the truth the imputation is scored against.

What the networks see: every column min-max scaled to [0, 1], the scaler fitted
on the entries that stay observed only (as Yoon et al.'s code does, with
``np.nanmin``/``np.nanmax``); a constant column gets span 1 instead of 0.
Missing entries hold 0. The mask m (1 observed, 0 missing) rides along as the
paired array ``m``, so every batch is ``{"x": (B, d), "m": (B, d)}``.
"""

from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganforge.data.base import Dataset
from ganforge.errors import ConfigError
from ganforge.registry import DATASETS

#: scikit-learn's bundled tables (feature columns only; no download needed).
TABLES = {"breast_cancer": "load_breast_cancer", "wine": "load_wine", "diabetes": "load_diabetes",
          "iris": "load_iris"}
#: Cell texts read as missing (case-insensitive, surrounding spaces ignored).
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})


@dataclass
class Table:
    """A numeric table: ``values`` (N, d) float64 with NaN where a cell is missing.

    cells: the CSV's cells as written (observed cells are written back verbatim), None for bundled tables.
    header: whether the CSV had a header row (an output CSV repeats it).
    """

    columns: list[str]
    values: np.ndarray
    source: str
    cells: list[list[str]] | None = None
    header: bool = True
    delimiter: str = ","

    @property
    def missing(self) -> np.ndarray:
        return np.isnan(self.values)


def _number(text: str) -> float | None:
    """A cell's value: NaN for a missing token, None when it is not a number."""
    t = text.strip()
    if t.lower() in MISSING_TOKENS:
        return float("nan")
    try:
        v = float(t)
    except ValueError:
        return None
    return v if np.isfinite(v) else None  # inf is not a value a min-max scaler can hold


def read_csv(path: str | Path, delimiter: str = ",") -> Table:
    """A CSV of numeric columns as a Table; a ConfigError that names the file, line and column otherwise."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"CSV file not found: {p}" + (" (it is a folder)" if p.is_dir() else ""))
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f, delimiter=delimiter) if any(c.strip() for c in r)]
    except UnicodeDecodeError:
        raise ConfigError(f"{p} is not a text file (not UTF-8); give a CSV of numbers") from None
    except csv.Error as e:
        raise ConfigError(f"{p} is not a readable CSV: {e}") from None
    except OSError as e:
        raise ConfigError(f"cannot read {p}: {e.strerror or e}") from None
    if not rows:
        raise ConfigError(f"{p} is empty: a CSV needs a header row and at least one row of numbers")
    header = any(_number(c) is None for c in rows[0])
    columns = [c.strip() for c in rows[0]] if header else [f"c{j}" for j in range(len(rows[0]))]
    body = rows[1:] if header else rows
    line0 = 2 if header else 1
    if not body:
        raise ConfigError(f"{p} has a header but no data rows")
    d = len(columns)
    values = np.empty((len(body), d))
    for i, row in enumerate(body):
        if len(row) != d:
            raise ConfigError(f"{p}, line {line0 + i}: {len(row)} fields, but the {'header' if header else 'first row'}"
                              f" has {d} (delimiter {delimiter!r})")
        for j, cell in enumerate(row):
            v = _number(cell)
            if v is None:
                raise ConfigError(f"{p}: column {columns[j]!r} holds a non-numeric value {cell.strip()!r} on line "
                                  f"{line0 + i}; imputation needs numeric columns (drop or encode it; missing cells "
                                  f"are empty or one of {', '.join(sorted(t for t in MISSING_TOKENS if t))})")
            values[i, j] = v
    table = Table(columns, values, str(p), cells=[list(r) for r in body], header=header, delimiter=delimiter)
    check_columns(table)
    return table


def check_columns(table: Table, after: str = "") -> None:
    """Every column needs at least one observed value to be scaled and learnt."""
    empty = [c for c, miss in zip(table.columns, table.missing.all(axis=0), strict=True) if miss]
    if empty:
        raise ConfigError(f"{table.source}: column(s) {', '.join(map(repr, empty))} have no observed values"
                          f"{after}: nothing to learn them from; drop them")


def load_table(table: str, delimiter: str = ",") -> Table:
    """A bundled table by name (``TABLES``) or a CSV file by path."""
    if table in TABLES:
        import sklearn.datasets

        b = getattr(sklearn.datasets, TABLES[table])()
        return Table([str(c) for c in b.feature_names], np.asarray(b.data, dtype=np.float64), table)
    if table.lower().endswith(".csv") or Path(table).is_file():
        return read_csv(table, delimiter)
    raise ConfigError(f"unknown table {table!r}: give a CSV file's path or one of {', '.join(TABLES)}")


class MinMaxScaler:
    """Per-column x -> (x - lo) / span, fitted on the observed (non-NaN) values; span 1 for a constant column."""

    def __init__(self, lo: np.ndarray, span: np.ndarray) -> None:
        self.lo, self.span = np.asarray(lo, np.float64), np.asarray(span, np.float64)

    @classmethod
    def fit(cls, values: np.ndarray) -> MinMaxScaler:
        lo, hi = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
        span = hi - lo
        return cls(lo, np.where(span > 0, span, 1.0))

    def scale(self, values: np.ndarray) -> np.ndarray:
        return (values - self.lo) / self.span

    def unscale(self, scaled: np.ndarray) -> np.ndarray:
        return scaled * self.span + self.lo


def mcar_mask(shape: tuple[int, int], rate: float, seed: int) -> np.ndarray:
    """Bool (N, d): True where an entry is hidden, each independently with probability ``rate``."""
    return np.random.default_rng(seed).random(shape) < rate


def scaled_rmse(imputed: np.ndarray, truth: np.ndarray, hidden: np.ndarray,
                scale_by: np.ndarray | None = None) -> float:
    """RMSE over the ``hidden`` entries, both tables min-max scaled by the truth's columns.

    Yoon et al.'s convention (their code's ``rmse_loss``): errors on [0, 1]-scaled data, so that
    columns of different units weigh alike. ``scale_by`` (default ``truth``) is the table whose column
    minima and maxima set the scale; its NaNs (values never known) are ignored.
    """
    scaler = MinMaxScaler.fit(truth if scale_by is None else scale_by)
    err = (scaler.scale(imputed) - scaler.scale(truth))[hidden]
    return float(np.sqrt(np.mean(err ** 2))) if err.size else float("nan")


def mean_impute(values: np.ndarray) -> np.ndarray:
    """Missing (NaN) entries replaced by their column's observed mean."""
    return np.where(np.isnan(values), np.nanmean(values, axis=0), values)


def format_value(v: float) -> str:
    """An imputed value as written in an output CSV (8 significant digits)."""
    return f"{v:.8g}"


def write_csv(path: str | Path, table: Table, completed: np.ndarray) -> Path:
    """``table`` with its missing cells filled from ``completed`` (N, d), atomically.

    Observed cells of a CSV are written exactly as they were read (text, not a re-formatted number),
    the header row is repeated, and the delimiter kept.
    """
    p = Path(path)
    miss = table.missing
    rows = []
    for i in range(len(table.values)):
        src = table.cells[i] if table.cells is not None else [repr(float(v)) for v in table.values[i]]
        rows.append([format_value(float(completed[i, j])) if miss[i, j] else src[j] for j in range(len(src))])
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent or ".")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, delimiter=table.delimiter, lineterminator="\n")
            if table.header:
                w.writerow(table.columns)
            w.writerows(rows)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def table_dataset(table: Table, *, missing_rate: float = 0.0, seed: int = 0, name: str = "tabular") -> Dataset:
    """A Dataset of ``table`` with a fraction ``missing_rate`` of its observed entries hidden (MCAR, ``seed``)."""
    if not 0.0 <= missing_rate < 1.0:
        raise ConfigError(f"missing_rate must lie in [0, 1), got {missing_rate}")
    truth = table.values
    hidden = mcar_mask(truth.shape, missing_rate, seed) & ~table.missing if missing_rate > 0 else \
        np.zeros(truth.shape, bool)
    values = np.where(hidden, np.nan, truth)
    check_columns(Table(table.columns, values, table.source),
                  after=f" once {missing_rate:.0%} of the entries are hidden (lower missing_rate)")
    scaler = MinMaxScaler.fit(values)
    observed = ~np.isnan(values)
    x = np.where(observed, scaler.scale(np.nan_to_num(values)), 0.0)
    info = {"kind": "tabular", "table": table.source, "columns": list(table.columns),
            "header": table.header, "missing_rate": missing_rate,
            "seed": seed, "scaler": scaler, "truth": truth, "hidden": hidden,
            "paired": {"m": torch.as_tensor(observed, dtype=torch.float32)}}
    return Dataset(name=name, x=torch.as_tensor(x, dtype=torch.float32), info=info)


@DATASETS.register("tabular")
def tabular(*, table: str = "breast_cancer", missing_rate: float = 0.2, seed: int = 0,
            delimiter: str = ",") -> Dataset:
    """A numeric table (sklearn's breast_cancer, wine, diabetes, iris, or a CSV path), [0,1]-scaled, MCAR mask."""
    if len(delimiter) != 1:
        raise ConfigError(f"delimiter must be one character, got {delimiter!r}")
    return table_dataset(load_table(table, delimiter), missing_rate=missing_rate, seed=seed)
