"""One self-contained HTML page for one or more runs: ``ganforge report RUN_DIR [RUN_DIR ...]``.

Everything is inside the file: figures are PNGs embedded as base64 ``data:``
URIs, the style sheet is inline, there is no script and nothing is fetched,
so the page opens offline and can be mailed or attached as it is. For each
run: the resolved config, loss and metric curves (matplotlib), the sample
figures over time, the final metrics with their protocol records (and the
scores `ganforge eval` wrote to RUN_DIR/eval.json, with theirs), warnings
from train.log. With several runs: columns side by side, overlaid curves, a
table of final metrics and the config keys that differ.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ganforge.errors import ConfigError

MAX_SAMPLE_FIGURES = 6  # per run, evenly spaced over time, always the first and the last
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


@dataclass
class RunData:
    """What a report shows of one run directory (read from its files, never from a checkpoint)."""

    path: Path
    config: dict
    losses: list[dict] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)
    samples: list[tuple[int, Path]] = field(default_factory=list)
    checkpoints: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    protocol: dict | None = None  # RUN_DIR/eval_protocol.json: {"step": ..., "protocol": {...}}
    scored: dict | None = None  # RUN_DIR/eval.json from `ganforge eval`: {"source", "scores", "protocol"}
    label: str = ""  # how the page names the run (set by ``label_runs``)

    @property
    def name(self) -> str:
        return str(self.config.get("name", self.path.name))


def label_runs(runs: list[RunData]) -> None:
    """Config names when they tell the runs apart, else folder names, else parent/folder."""
    for key in (lambda r: r.name, lambda r: r.path.name, lambda r: f"{r.path.parent.name}/{r.path.name}",
                lambda r: str(r.path)):
        labels = [key(r) for r in runs]
        if len(set(labels)) == len(labels):
            break
    for r, lab in zip(runs, labels, strict=True):
        r.label = lab


def _jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:  # a half-written last line of a killed run
            continue
    return out


def load_run(path: str | Path) -> RunData:
    """Read config.yaml, losses.jsonl, metrics.jsonl, samples/ and train.log of a run directory."""
    p = Path(path)
    if not p.is_dir():
        raise ConfigError(f"run directory not found: {p}")
    cfg_file = p / "config.yaml"
    if not cfg_file.is_file():
        raise ConfigError(f"{p} is not a run directory (no config.yaml); give the folder `ganforge train` wrote")
    try:
        config = yaml.safe_load(cfg_file.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{cfg_file} is not valid YAML: {e}") from None
    samples = []
    for f in sorted((p / "samples").glob("step_*.png")):
        try:
            samples.append((int(f.stem.split("_")[1]), f))
        except (IndexError, ValueError):
            continue
    ckpts = sorted(int(f.stem.split("_")[1]) for f in (p / "checkpoints").glob("step_*.pt")
                   if f.stem.split("_")[1].isdigit())
    warn = []
    if (p / "train.log").is_file():
        warn = [ln for ln in (p / "train.log").read_text(errors="replace").splitlines() if " WARNING " in ln]
    protocol, scored = _json_file(p / "eval_protocol.json"), _json_file(p / "eval.json")
    if scored is not None and not isinstance(scored.get("scores"), dict):
        scored = None  # not a file `ganforge eval` wrote
    return RunData(p, config, _jsonl(p / "losses.jsonl"), _jsonl(p / "metrics.jsonl"), samples, ckpts, warn,
                   protocol, scored)


def _json_file(path: Path) -> dict | None:
    """A JSON object from ``path``; None when it is missing or not a JSON object (the page says nothing)."""
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text())
    except (ValueError, OSError):
        return None
    return d if isinstance(d, dict) else None


# ----------------------------------------------------------------------------- figures
def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def series(records: list[dict], skip: tuple[str, ...] = ("step", "time")) -> dict[str, tuple[list, list]]:
    """{key: (steps, values)} for every numeric scalar in ``records`` (non-finite values left out)."""
    out: dict[str, tuple[list, list]] = {}
    for r in records:
        for k, v in r.items():
            if k in skip or not _number(v):
                continue
            s = out.setdefault(k, ([], []))
            s[0].append(r["step"])
            s[1].append(float(v))
    return out


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _smooth(values: list[float], n: int) -> list[float]:
    """Exponential moving average with a window of about n points (the raw curve is drawn too)."""
    a, out, m = 2.0 / (n + 1), [], values[0]
    for v in values:
        m = (1 - a) * m + a * v
        out.append(m)
    return out


def curves_figure(runs: list[tuple[str, dict[str, tuple[list, list]]]], title: str) -> str | None:
    """Small multiples, one panel per key, one line per run; base64 PNG or None when there is nothing."""
    from matplotlib.figure import Figure

    every = {k for _, s in runs for k in s}
    # "x_std" is drawn as a band around "x", not as a panel of its own
    keys = sorted((k for k in every if not (k.endswith("_std") and k[:-4] in every)),
                  key=lambda k: (k.endswith("_gnorm"), k))
    if not keys:
        return None
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig = Figure(figsize=(3.6 * cols, 2.5 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        for i, (label, s) in enumerate(runs):
            if key not in s:
                continue
            x, y = s[key]
            color = COLORS[i % len(COLORS)]
            if len(y) > 60:
                ax.plot(x, y, color=color, alpha=0.25, lw=0.8)
                ax.plot(x, _smooth(y, max(5, len(y) // 30)), color=color, lw=1.4, label=label)
            else:
                ax.plot(x, y, color=color, lw=1.4, marker="o" if len(y) < 15 else None, ms=3, label=label)
            if key + "_std" in s:
                std = dict(zip(*s[key + "_std"], strict=True))
                xs = [t for t in x if t in std]
                mid = [v for t, v in zip(x, y, strict=True) if t in std]
                ax.fill_between(xs, [m - std[t] for t, m in zip(xs, mid, strict=True)],
                                [m + std[t] for t, m in zip(xs, mid, strict=True)], color=color, alpha=0.15, lw=0)
        ax.set_title(key, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.set_xlabel("step", fontsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    if len(runs) > 1:
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(runs)), fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def pick_samples(samples: list[tuple[int, Path]], k: int = MAX_SAMPLE_FIGURES) -> list[tuple[int, Path]]:
    """At most k sample figures, evenly spaced, keeping the first and the last."""
    if len(samples) <= k:
        return samples
    idx = sorted({round(i * (len(samples) - 1) / (k - 1)) for i in range(k)})
    return [samples[i] for i in idx]


# -------------------------------------------------------------------------------- html
CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:22px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:14px 0 6px}.meta{color:#666;font-size:12px}
.runs{display:grid;gap:16px;overflow-x:auto}
.run{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px;min-width:360px}
img{max-width:100%;height:auto;display:block}
figure{margin:6px 0}figcaption{font-size:11px;color:#555}
.samples{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:6px}
table{border-collapse:collapse;font-size:12px;margin:6px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f0f0f0}
pre{background:#f6f6f6;border:1px solid #e4e4e4;padding:8px;font-size:11px;overflow:auto;max-height:420px;
white-space:pre-wrap;overflow-wrap:anywhere}
details summary{cursor:pointer;font-size:13px;margin:4px 0}.warn{color:#a40}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if v is None:
        return "n/a"
    return str(v)


def _img(b64: str, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{b64}">'


def _final(run: RunData) -> dict:
    return run.metrics[-1] if run.metrics else {}


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: d}


def _compact(d: Any) -> str:
    """One line per top-level key, values as compact JSON (a protocol record fits on a screen)."""
    if not isinstance(d, dict):
        return json.dumps(d)
    return "\n".join(f"{k}: {json.dumps(v, separators=(', ', ': '))}" for k, v in d.items())


def _run_column(run: RunData) -> str:
    c = run.config
    last = run.losses[-1] if run.losses else {}
    target = c.get("train", {}).get("steps", "?")
    done = last.get("step", 0)
    parts = [f'<div class="run"><h2>{_e(run.label)}</h2>',
             f'<div class="meta">{_e(run.name)}: {_e(run.path)}<br>game {_e(c.get("game", {}).get("name"))}, '
             f'objective {_e(c.get("objective", {}).get("name"))}, data {_e(c.get("data", {}).get("name"))}; '
             f'step {_e(done)} of {_e(target)}'
             + (f', {_e(round(last["time"], 1))} s' if _number(last.get("time")) else "")
             + f'; checkpoints at steps {_e(", ".join(map(str, run.checkpoints)) or "none")}</div>']
    parts.append(_samples(run))
    parts.append(_final_metrics(run))
    img = curves_figure([(run.label, series(run.losses))], "losses (raw faint, smoothed solid)"
                        if len(run.losses) > 60 else "losses")
    parts.append("<h3>Loss curves</h3>" + (_img(img, f"loss curves of {run.label}") if img else
                                            "<p>No loss records yet.</p>"))
    img = curves_figure([(run.label, series(run.metrics))], "metrics at each evaluation (band: +- std)")
    parts.append("<h3>Metric curves</h3>" + (_img(img, f"metric curves of {run.label}") if img else
                                              "<p>No numeric metrics recorded.</p>"))
    if run.warnings:
        lines = "\n".join(run.warnings[-20:])
        parts.append(f'<details><summary class="warn">{len(run.warnings)} warning(s) in train.log</summary>'
                     f"<pre>{_e(lines)}</pre></details>")
    parts.append(f"<details><summary>Resolved config</summary><pre>{_e(yaml.safe_dump(c, sort_keys=False))}"
                 f"</pre></details></div>")
    return "".join(parts)


def _samples(run: RunData) -> str:
    shown = pick_samples(run.samples)
    if not shown:
        return "<h3>Samples over time</h3><p>No sample figures (eval.samples off, or no evaluation yet).</p>"
    parts = ['<h3>Samples over time</h3><div class="samples">']
    for step, f in shown:
        b64 = base64.b64encode(f.read_bytes()).decode("ascii")
        parts.append(f"<figure>{_img(b64, f'samples at step {step}')}<figcaption>step {step}</figcaption></figure>")
    parts.append("</div>")
    if len(shown) < len(run.samples):
        parts.append(f'<div class="meta">{len(shown)} of {len(run.samples)} sample figures shown.</div>')
    return "".join(parts)


def _final_metrics(run: RunData) -> str:
    fin = _final(run)
    if not fin:
        return "<h3>Final metrics</h3><p>No evaluation recorded.</p>" + _eval_scores(run)
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(_fmt(v))}</td></tr>" for k, v in fin.items()
                   if k not in ("step", "protocol") and not isinstance(v, (dict, list)))
    out = f"<h3>Final metrics (step {_e(fin.get('step'))})</h3><table><tr><th>metric</th><th>value</th></tr>" \
          f"{rows}</table>"
    extra = {k: v for k, v in fin.items() if isinstance(v, (dict, list)) and k != "protocol"}
    if extra:
        out += f"<details><summary>Other results</summary><pre>{_e(json.dumps(extra, indent=1))}</pre></details>"
    protocol, where = fin.get("protocol"), ""
    if protocol is None and run.protocol:
        protocol, where = run.protocol.get("protocol"), f" (eval_protocol.json, step {run.protocol.get('step')})"
    if protocol is not None:
        out += (f"<details open><summary>Protocol of these metrics{_e(where)}</summary>"
                f"<pre>{_e(_compact(protocol))}</pre></details>")
    return out + _eval_scores(run)


def _eval_scores(run: RunData) -> str:
    """The scores `ganforge eval` wrote to RUN_DIR/eval.json, with what was scored and their protocol."""
    if not run.scored:
        return ""
    src, scores = run.scored.get("source") or {}, run.scored["scores"]
    what = ", ".join(f"{k} {_fmt(src[k])}" for k in ("step", "generator", "checkpoint") if k in src)
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(_fmt(v))}</td></tr>" for k, v in scores.items()
                   if not isinstance(v, (dict, list)))
    out = (f"<h3>Scores from ganforge eval (eval.json{', ' + _e(what) if what else ''})</h3>"
           f"<table><tr><th>metric</th><th>value</th></tr>{rows}</table>")
    if run.scored.get("protocol") is not None:
        out += (f"<details open><summary>Protocol of these scores</summary>"
                f"<pre>{_e(_compact(run.scored['protocol']))}</pre></details>")
    return out


def _comparison(runs: list[RunData]) -> str:
    parts = ["<h2>Comparison</h2>"]
    names = sorted({k for r in runs for k, v in _final(r).items() if k != "step" and _number(v)})
    if names:
        head = "".join(f"<th>{_e(r.label)}</th>" for r in runs)
        body = "".join("<tr><td>" + _e(k) + "</td>" + "".join(f"<td>{_e(_fmt(_final(r).get(k)))}</td>"
                                                               for r in runs) + "</tr>" for k in names)
        steps = "".join(f"<td>{_e(_final(r).get('step', 'n/a'))}</td>" for r in runs)
        parts.append(f"<h3>Final metrics</h3><table><tr><th>metric</th>{head}</tr><tr><td><i>step</i></td>"
                     f"{steps}</tr>{body}</table>")
    scored = [(r.scored or {}).get("scores", {}) for r in runs]
    names = sorted({k for sc in scored for k, v in sc.items() if _number(v)})
    if names:  # `ganforge eval` scores (eval.json); each run's protocol is in its column below
        head = "".join(f"<th>{_e(r.label)}</th>" for r in runs)
        body = "".join("<tr><td>" + _e(k) + "</td>" + "".join(f"<td>{_e(_fmt(sc.get(k)))}</td>" for sc in scored)
                       + "</tr>" for k in names)
        parts.append(f"<h3>Scores from ganforge eval (eval.json)</h3><table><tr><th>metric</th>{head}</tr>"
                     f"{body}</table>")
    flats = [_flat(r.config) for r in runs]
    keys = sorted({k for f in flats for k in f})
    differ = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1]
    if differ:
        head = "".join(f"<th>{_e(r.label)}</th>" for r in runs)
        body = "".join("<tr><td>" + _e(k) + "</td>" + "".join(f"<td>{_e(_fmt(f.get(k)))}</td>" for f in flats)
                       + "</tr>" for k in differ)
        parts.append(f"<h3>Config keys that differ</h3><table><tr><th>key</th>{head}</tr>{body}</table>")
    else:
        parts.append("<p>The runs have identical configs.</p>")
    for what, title in (("losses", "Loss curves"), ("metrics", "Metric curves")):
        img = curves_figure([(r.label, series(getattr(r, what))) for r in runs], f"{title.lower()}, overlaid")
        if img:
            parts.append(f"<h3>{title}, overlaid</h3>" + _img(img, f"{title} of all runs"))
    return "".join(parts)


def render(runs: list[RunData]) -> str:
    """The report page for ``runs`` as one HTML string."""
    from ganforge import __version__

    if not runs:
        raise ConfigError("report needs at least one run directory")
    label_runs(runs)
    title = "ganforge report: " + ", ".join(r.label for r in runs)
    cols = f"grid-template-columns:repeat({len(runs)},minmax(360px,1fr))"
    body = [f"<h1>{_e(title)}</h1>",
            f'<div class="meta">written {_e(time.strftime("%Y-%m-%d %H:%M:%S"))} by ganforge {_e(__version__)}; '
            f"self-contained: every figure is embedded, nothing is fetched.</div>"]
    if len(runs) > 1:
        body.append(_comparison(runs))
        body.append("<h2>Runs side by side</h2>")
    body.append(f'<div class="runs" style="{cols}">' + "".join(_run_column(r) for r in runs) + "</div>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{_e(title)}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def default_out(run_dirs: list[str | Path]) -> Path:
    """RUN_DIR/report.html for one run, report.html in the current folder for several."""
    return Path(run_dirs[0]) / "report.html" if len(run_dirs) == 1 else Path("report.html")


def write_report(run_dirs: list[str | Path], out: str | Path | None = None) -> Path:
    """Read each run directory and write the report; returns its path."""
    runs = [load_run(d) for d in run_dirs]
    path = Path(out) if out is not None else default_out(run_dirs)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(runs), encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot write the report to {path}: {e.strerror or e}") from None
    return path
