"""``ganforge bench pix2pix``: the paper's loss ablation (Isola et al. 2017, Table 1) on Fashion-MNIST tasks.

Trains ``configs/pix2pix/fmnist-<task>.yaml`` for the tasks edges (Sobel outline -> garment) and
masked (a 14x14 hole -> the whole garment) in three forms, 3 seeds each, overriding only the
loss weights and the run mechanics (seed, one thread, no intermediate evaluation or checkpoints;
``--quick`` also cuts the steps):

- L1 alone (``game.adversarial=0``: the critic never trains), cGAN alone (``game.l1=0``), and
  L1 + cGAN (the recipe as committed: its l1 weight and objective; edges l1 10 with lsgan, masked l1 100
  with ns). The three rows of a task differ only in these two loss weights: same steps, nets, optimisers,
  seeds and data order.

The truth of every test input is known (``ganforge.data.paired``). On the first ``n_test`` test
pairs (a, b), with the translations G(a) (dropout as the recipe's ``game.test_dropout`` says) and the
2 px padding cropped off, it scores

- PSNR (dB, range 2 on [-1, 1]) and SSIM (Wang et al. 2004, Gaussian window 11, sigma 1.5;
  ``ganforge.metrics.math.ssim``) against b, and PSNR inside the hole for the masked task;
- accuracy of the shipped classifier (``fmnist-cnn``) on G(a) (on the true b: its ceiling);
- FID (the classifier's features) of G(a) against the true targets b; the floor is the FID of the
  next ``n_test`` real test targets against b.

Beside them, two baselines: doing nothing (a itself) and the mean training target. Expected
(the paper): L1 alone has the best PSNR but blurry outputs (worse FID), the cGAN alone is sharper
but less faithful, L1 + cGAN has the best FID with a PSNR near L1's. Means carry a 95 % Student-t
interval over seeds; runs go two at a time and finished ones are kept in a ``.partial.jsonl``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from ganforge.bench.compare import mean_ci
from ganforge.bench.cyclegan_bench import RUN_OVERRIDES, train_recipe
from ganforge.bench.jobs import ci_text, finish, machine_line, partial_path, read_partial, run_jobs, value_text
from ganforge.bench.translation import Judge, psnr, ssim, to_model, write
from ganforge.registry import BENCHMARKS

ROOT = Path(__file__).resolve().parents[2]
TASKS = ("edges", "masked")
MODES = {"L1": ["--game.adversarial=0"], "cGAN": ["--game.l1=0"], "L1+cGAN": []}
SEEDS = (0, 1, 2)
QUICK_STEPS = 30
QUICK = (f"--train.steps={QUICK_STEPS}", "--data.limit=2000")
METRICS = ("psnr", "ssim", "acc", "fid", "psnr_hole", "cpu_s")
OVERRIDES = (*RUN_OVERRIDES, "--eval.metrics=[]")
MEAN_OF = 10_000  # training targets averaged into the mean-target baseline


def recipe(task: str) -> Path:
    return ROOT / "configs" / "pix2pix" / f"fmnist-{task}.yaml"


def test_pairs(task: str, n: int, data_params: dict) -> dict[str, torch.Tensor]:
    """The first ``n`` test pairs of ``task`` built as the recipe builds its data, padding cropped off."""
    from ganforge.data.paired import crop, fmnist_paired

    keep = {k: v for k, v in data_params.items() if k not in ("name", "split", "limit", "heldout", "task")}
    d = fmnist_paired(task=task, split="test", limit=n, heldout=0, **keep)
    pad = d.info["pad"]
    out = {"a_net": to_model(d.info["paired"]["a"]), "a": to_model(crop(d.info["paired"]["a"], pad)),
           "b": to_model(crop(d.x, pad)), "y": d.y, "pad": pad}
    if "mask" in d.info:
        out["mask"] = crop(d.info["mask"], pad)
    return out


def scores(x: torch.Tensor, t: dict, judge: Judge, ref: torch.Tensor) -> dict[str, float | None]:
    """Translations x (cropped, [-1, 1]) of the first n test pairs ``t`` against their truth; ``ref``: targets
    for FID (the first n); the hole PSNR where the task has a mask."""
    n = len(x)
    b, y = t["b"][:n], t["y"][:n]
    row = {"psnr": psnr(x, b), "ssim": ssim(x, b), "acc": judge.accuracy(x, y), "fid": judge.fid(x, ref),
           "psnr_hole": None}
    if "mask" in t:
        m = t["mask"][:n].expand_as(x)
        se = ((x.clamp(-1, 1) - b) ** 2 * m).flatten(1).sum(1) / m.flatten(1).sum(1)
        row["psnr_hole"] = float((10 * torch.log10(4.0 / se.double())).mean())
    return row


def completion_scores(fake: torch.Tensor, t: dict, judge: Judge, n: int) -> dict[str, float]:
    """The inpaint bench's protocol on the first ``n`` masked test pairs: the known pixels kept exactly, the
    hole from the translation; mean per-image PSNR (range 2) inside the hole and the classifier's accuracy on
    the completed images (``ganforge.bench.inpaint_bench`` scores every method so)."""
    from ganforge.projection import blend, psnr_in

    b, hole = t["b"][:n], t["mask"][:n].float()
    done = blend(b, fake[:n], 1 - hole)
    return {"psnr_hole": float(psnr_in(done, b, hole).mean()), "accuracy": judge.accuracy(done, t["y"][:n]), "n": n}


def _one(job: dict) -> dict:
    """Train one (task, mode, seed) in this one-thread worker and score it on the test pairs; a masked task
    with the central hole is scored by the inpaint bench's protocol too (``inpaint``: its first
    ``inpaint_n`` test images, the same images and hole)."""
    from ganforge.data.paired import crop

    torch.set_num_threads(1)
    game, cpu, cfg = train_recipe(Path(job["recipe"]), job["overrides"])
    n = job["n_test"]
    t = test_pairs(job["task"], max(n, job.get("inpaint_n", 0)), cfg["data"])
    fake = crop(game.translate(t["a_net"], seed=0), t["pad"])
    judge = Judge()
    row = scores(fake[:n], t, judge, t["b"][:n])
    if job.get("inpaint_n") and cfg["data"].get("hole_position") == "center":
        row["inpaint"] = completion_scores(fake, t, judge, job["inpaint_n"])
    return {"task": job["task"], "mode": job["mode"], "seed": job["seed"], "steps": cfg["train"]["steps"],
            "cpu_s": cpu, **row}


def baselines(task: str, n_test: int, data_params: dict, judge: Judge) -> dict[str, dict]:
    """Doing nothing (the input itself), the mean of ``MEAN_OF`` training targets, and the real-image floor."""
    from ganforge.data.paired import crop, fmnist_paired

    t = test_pairs(task, 2 * n_test, data_params)
    ref = t["b"][:n_test]
    keep = {k: v for k, v in data_params.items() if k not in ("name", "split", "limit", "heldout", "task")}
    train = fmnist_paired(task=task, split="train", limit=MEAN_OF, heldout=0, **keep)
    mean = to_model(crop(train.x, train.info["pad"])).mean(0, keepdim=True).expand(n_test, -1, -1, -1)
    floor = {"fid": judge.fid(t["b"][n_test:], ref), "acc": judge.accuracy(ref, t["y"][:n_test])}
    out = {"mean target": scores(mean.contiguous(), t, judge, ref), "real targets (floor)": floor}
    if t["a"].shape[1:] == ref.shape[1:]:
        out = {"do nothing (input)": scores(t["a"][:n_test], t, judge, ref), **out}
    return out


def _jobs(quick: bool, n_test: int) -> list[dict]:
    from ganforge.bench.inpaint_bench import FULL as INPAINT_FULL
    from ganforge.bench.inpaint_bench import QUICK as INPAINT_QUICK

    steps = list(QUICK) if quick else []
    inpaint_n = (INPAINT_QUICK if quick else INPAINT_FULL)["n_test"]
    # seed-major, the cGAN-alone runs last: a partial table has the L1 and L1 + cGAN cells (the ones the issue's
    # targets and the inpaint bench read) at full seeds first
    return [{"task": task, "mode": mode, "seed": s, "n_test": n_test, "recipe": str(recipe(task)),
             "overrides": [f"--train.seed={s}", *OVERRIDES, *MODES[mode], *steps],
             **({"inpaint_n": inpaint_n} if task == "masked" else {})}
            for group in (("L1", "L1+cGAN"), ("cGAN",)) for s in (SEEDS[:1] if quick else SEEDS)
            for task in TASKS for mode in group]


def recipe_digest(task: str) -> str:
    """sha256 of the recipe file's text: the inpaint bench reuses this bench's masked runs only while it matches."""
    import hashlib

    return hashlib.sha256(recipe(task).read_bytes()).hexdigest()


@BENCHMARKS.register("pix2pix")
def run(*, quick: bool = False, out: str | None = None, workers: int = 2) -> dict[str, Any]:
    """pix2pix's ablation (L1, cGAN, L1 + cGAN) on fmnist edges and masked: PSNR/SSIM, accuracy, FID to truth."""
    n_test = 200 if quick else 1000
    jobs = _jobs(quick, n_test)
    partial = partial_path(out)
    resumed = read_partial(partial, _key).keys() & {_key(j) for j in jobs}  # not in this call's wall time
    t0 = time.perf_counter()
    runs = run_jobs(jobs, _one, _key, partial=partial, workers=workers,
                    report=lambda r: f"pix2pix: {r['task']:<6} {r['mode']:<7} seed {r['seed']}: PSNR {r['psnr']:.2f} "
                                     f"dB, FID {r['fid']:.2f}, acc {r['acc']:.3f} ({r['cpu_s']:.0f} CPU-s)")
    result = summarise(jobs, runs, quick=quick, workers=workers, wall_seconds=time.perf_counter() - t0,
                       resumed=len(resumed))
    write(result, out, markdown(result))
    if out:
        finish(partial)
    return result


def _key(r: dict) -> tuple:
    return (r["task"], r["mode"], r["seed"])


def write_partial(out: str, workers: int = 2) -> dict[str, Any]:
    """The table of the runs an interrupted full bench finished (its ``.partial.jsonl``, which stays so that
    ``ganforge bench pix2pix`` resumes): each cell says how many seeds it holds."""
    import json

    jobs = _jobs(False, 1000)
    path = partial_path(out)
    done = {_key(r): r for r in map(json.loads, path.read_text().splitlines())} if path.exists() else {}
    runs = [done[_key(j)] for j in jobs if _key(j) in done]
    result = summarise(jobs, runs, quick=False, workers=workers, wall_seconds=None)
    write(result, out, markdown(result))
    return result


def summarise(jobs: list[dict], runs: list[dict], *, quick: bool, workers: int,
              wall_seconds: float | None, resumed: int = 0) -> dict[str, Any]:
    """The result record: baselines, and per (task, mode) the mean and 95 % CI of each metric over the
    ``runs`` (which may be a subset of ``jobs``, the finished part of an interrupted bench)."""
    from ganforge.api import make_config

    torch.set_num_threads(1)
    n_test = jobs[0]["n_test"]
    judge = Judge()
    cells, base = [], {}
    for task in TASKS:
        base[task] = baselines(task, n_test, make_config(str(recipe(task)))["data"], judge)
        for mode in MODES:
            rs = [r for r in runs if r["task"] == task and r["mode"] == mode]
            cells.append({"task": task, "mode": mode, "seeds": len(rs), "steps": rs[0]["steps"] if rs else None,
                          **{m: mean_ci([r[m] for r in rs if r[m] is not None]) for m in METRICS}})
    return {"benchmark": "pix2pix", "quick": quick, "machine": f"{machine_line(1)} (2-core CPU, shared with "
            f"other jobs); {workers} runs at a time, 1 thread each", "threads": 1, "n_test": n_test,
            "recipes": {t: f"configs/pix2pix/fmnist-{t}.yaml" for t in TASKS},
            "recipe_sha256": {t: recipe_digest(t) for t in TASKS},
            "l1": {t: make_config(str(recipe(t)))["game"]["l1"] for t in TASKS},
            "objective": {t: make_config(str(recipe(t)))["objective"]["name"] for t in TASKS},
            "hole_position": make_config(str(recipe("masked")))["data"]["hole_position"],
            "test_dropout": {t: make_config(str(recipe(t)))["game"]["test_dropout"] for t in TASKS},
            "overrides": {"all": [*OVERRIDES, "--train.seed=S", *(QUICK if quick else ())], **MODES},
            "runs_done": f"{len(runs)} of {len(jobs)}", "total_cpu_seconds": sum(r["cpu_s"] for r in runs),
            "wall_seconds": wall_seconds, "runs_resumed": resumed, "baselines": base, "cells": cells, "runs": runs}


def markdown(result: dict[str, Any]) -> list[str]:
    """The markdown tables of a ``pix2pix`` result."""
    cmd = "ganforge bench pix2pix" + (" --quick" if result["quick"] else "")
    ov, wall, obj = result["overrides"], result["wall_seconds"], result.get("objective", {})
    weights = ", ".join(f"{t} l1 {w:g}" + (f" {obj[t]}" if t in obj else "") for t, w in result.get("l1", {}).items())
    lines = [
        f"# pix2pix loss ablation on Fashion-MNIST paired tasks{' (quick)' if result['quick'] else ''}", "",
        f"Made by `{cmd}`. Machine: {result['machine']}. Each recipe (`{'`, `'.join(result['recipes'].values())}`) "
        f"is trained as committed with only `{' '.join(ov['all'])}` and, per row, L1 alone: "
        f"`{' '.join(ov['L1'])}`, cGAN alone: `{' '.join(ov['cGAN'])}`, L1 + cGAN: the recipe "
        f"({weights}). "
        f"Test: the first {result['n_test']} fmnist test pairs, translated with the recipe's test-time dropout ("
        f"{', '.join(f'{t} ' + ('on' if v else 'off') for t, v in result.get('test_dropout', {}).items())}; "
        "seed 0), the 2 px "
        "padding cropped off (28x28). PSNR in dB on [-1, 1] (range 2); SSIM Gaussian window 11, sigma 1.5; acc = "
        "the shipped classifier (fmnist-cnn) on the outputs; FID (classifier features) against the true targets "
        "of the same inputs (floor: the next real test targets); mean target = the mean of the first "
        f"{MEAN_OF:,} training targets; hole PSNR = inside the 14x14 hole only (the masked recipe's hole: "
        f"{result.get('hole_position', 'random')}). Mean ± half-width of the 95 % "
        "Student-t interval over seeds. CPU-s = user + system time of one run's training at 1 thread. Wall time of the "
        f"bench {value_text(None if wall is None else wall / 60, '{:.1f}')} min"
        + (f" (the {result['runs_resumed']} runs resumed from an earlier invocation's `pix2pix.partial.jsonl` "
           "are not in it)" if result.get("runs_resumed") else "")
        + f"; {result['total_cpu_seconds']:.0f} CPU-s of training in all.",
        ""]
    done, total = result["runs_done"].split(" of ")
    if done != total:
        lines += [f"**Partial table**: {done} of {total} runs finished (the L1 and L1 + cGAN runs seed by seed "
                  "first, then the cGAN-alone runs); `ganforge bench pix2pix` resumes from `pix2pix.partial.jsonl`.",
                  ""]
    lines += [
        "| task | model | seeds | steps | PSNR | SSIM | hole PSNR | classifier acc | FID to truth | CPU-s per run |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for task in dict.fromkeys(c["task"] for c in result["cells"]):
        for name, b in result["baselines"][task].items():
            lines.append(f"| {task} | {name} | - | - | {value_text(b.get('psnr'), '{:.2f}')} | "
                         f"{value_text(b.get('ssim'), '{:.3f}')} | "
                         f"{value_text(b.get('psnr_hole'), '{:.2f}')} | {value_text(b.get('acc'), '{:.3f}')} | "
                         f"{value_text(b.get('fid'), '{:.2f}')} | - |")
        for c in (c for c in result["cells"] if c["task"] == task):
            lines.append(f"| {task} | {c['mode']} | {c['seeds']} | {c['steps'] or '-'} | "
                         f"{ci_text(c['psnr'], fmt='{:.2f}')} | "
                         f"{ci_text(c['ssim'])} | {ci_text(c['psnr_hole'], fmt='{:.2f}')} | {ci_text(c['acc'])} | "
                         f"{ci_text(c['fid'], fmt='{:.2f}')} | {ci_text(c['cpu_s'], fmt='{:.0f}')} |")
    lines += ["", "Expected pattern (Isola et al. 2017, Table 1 and Fig. 4): L1 alone the most faithful per pixel "
              "but blurry (worse FID), the cGAN alone sharp but less faithful, L1 + cGAN the best FID with a PSNR "
              "near L1's. Here (means):", ""]
    for task in dict.fromkeys(c["task"] for c in result["cells"]):
        cell = {c["mode"]: c for c in result["cells"] if c["task"] == task}
        base = result["baselines"][task]
        best_base = max(b["psnr"] for b in base.values() if b.get("psnr") is not None)
        both, l1 = cell["L1+cGAN"], cell["L1"]
        if both["fid"]["mean"] is None or l1["fid"]["mean"] is None:
            continue
        lines.append(f"- {task}: L1 + cGAN FID {both['fid']['mean']:.2f} vs L1 alone {l1['fid']['mean']:.2f} "
                     f"({'lower' if both['fid']['mean'] < l1['fid']['mean'] else 'not lower'}); L1 + cGAN PSNR "
                     f"{both['psnr']['mean']:.2f} dB vs the best baseline {best_base:.2f} dB "
                     f"({'above' if both['psnr']['mean'] > best_base else 'not above'}); L1 alone PSNR "
                     f"{l1['psnr']['mean']:.2f} dB.")
    lines += ["", "| task | model | seed | PSNR | SSIM | acc | FID | CPU-s |", "|---|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        lines.append(f"| {r['task']} | {r['mode']} | {r['seed']} | {r['psnr']:.2f} | {r['ssim']:.3f} | "
                     f"{r['acc']:.3f} | {r['fid']:.2f} | {r['cpu_s']:.0f} |")
    return lines
