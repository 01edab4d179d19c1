"""``ganforge bench stargan``: the StarGAN recipe over known transforms, beside a CycleGAN on one pair.

Trains ``configs/stargan/fmnist-domains.yaml`` as committed (domains rgb, tint, fade+rgb:
each on its own disjoint slice of Fashion-MNIST) and, with the same number of generator steps,
``configs/cyclegan/fmnist-tint.yaml`` on the pair grey -> tint (StarGAN's rgb -> tint); 3 seeds each, only the
run mechanics overridden (seed, one thread, no intermediate evaluation or checkpoints;
``--quick`` also cuts the steps). On the first ``n_test`` test images x, for every ordered
domain pair (i, j), G(T_i(x), j) is scored against the true translation T_j(x):

- PSNR (dB, range 2 on [-1, 1]) and L1, beside doing nothing (T_i(x) itself);
- content: the shipped classifier (``fmnist-cnn``) on T_j^-1(G(T_i(x), j));
- domain: D's auxiliary head, and an independent pixel probe (logistic regression on real domain images).

Targets (issue 13): content >= 0.75 and PSNR above doing nothing on every pair; StarGAN's mean PSNR
within 1.5 dB of the one-pair CycleGAN. Means carry a 95 % Student-t interval over seeds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.bench.compare import mean_ci
from ganforge.bench.cyclegan_bench import RUN_OVERRIDES, step_overrides, train_recipe
from ganforge.bench.jobs import ci_text, finish, machine_line, partial_path, run_jobs
from ganforge.bench.translation import Judge, psnr, test_images, to_model, write
from ganforge.registry import BENCHMARKS

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "configs" / "stargan" / "fmnist-domains.yaml"
CYCLEGAN_RECIPE = ROOT / "configs" / "cyclegan" / "fmnist-tint.yaml"
#: The CycleGAN's pair: grey fmnist -> tinted fmnist; StarGAN's grey domain is ``rgb`` (the grey level in all three
#: channels, the same information), so both are scored against the same truth tint(x).
PAIR = ("rgb", "tint")
SEEDS = (0, 1, 2)
QUICK_STEPS = 20
TARGETS = {"content": 0.75, "psnr_gap_db": 1.5}


def domain_probe(domains: list[str], n: int = 1500):
    """An independent judge of the domain: logistic regression on pixels of real T_k(train) images."""
    from sklearn.linear_model import LogisticRegression

    from ganforge.data.domains import fmnist_domains

    d = fmnist_domains(transforms=list(domains), split="train", limit=n)
    return LogisticRegression(max_iter=300).fit(to_model(d.x).flatten(1).numpy(), d.y.numpy())


def _pair_row(fake, src, truth, inverse, y, j, judge, probe, d_logits=None) -> dict[str, Any]:
    return {"psnr": psnr(fake, truth), "l1": float((fake.clamp(-1, 1) - truth).abs().mean()),
            "psnr_do_nothing": psnr(src, truth), "content": judge.accuracy(inverse(fake), y),
            "probe": float((probe.predict(fake.clamp(-1, 1).flatten(1).numpy()) == j).mean()),
            "d_cls": None if d_logits is None else float((d_logits.argmax(1) == j).double().mean())}


def _one(job: dict) -> dict:
    """One seed of StarGAN (every pair) or of the one-pair CycleGAN, trained and scored in this worker."""
    from ganforge.data.domains import get_transform

    torch.set_num_threads(1)
    x, y = test_images(job["n_test"])
    judge = Judge()
    path = RECIPE if job["model"] == "stargan" else CYCLEGAN_RECIPE
    game, cpu, cfg = train_recipe(path, job["overrides"])
    domains = job["domains"]
    probe = domain_probe(domains)
    ts = {d: get_transform(d) for d in domains}
    pairs = [(i, j) for i in domains for j in domains if i != j] if job["model"] == "stargan" else [PAIR]
    rows = []
    for i, j in pairs:
        src, truth, k = to_model(ts[i](x)), to_model(ts[j](x)), domains.index(j)
        if job["model"] == "stargan":
            fake = game.translate(src, k)
            row = _pair_row(fake, src, truth, ts[j].inverse, y, k, judge, probe, game.classify(fake))
        else:  # CycleGAN's A is the grey image itself (1 channel); do-nothing is still scored as rgb(x)
            row = _pair_row(game.translate(to_model(x), "ab"), src, truth, ts[j].inverse, y, k, judge, probe)
        rows.append({"source": i, "target": j, **row})
    return {"model": job["model"], "seed": job["seed"], "steps": cfg["train"]["steps"],
            "d_steps": cfg["train"].get("d_steps", 1), "cpu_s": cpu, "pairs": rows,
            "mean_psnr": float(np.mean([r["psnr"] for r in rows])),
            "content_original": judge.accuracy(to_model(x), y)}


def _jobs(quick: bool, n_test: int) -> list[dict]:
    from ganforge.api import make_config

    domains = list(make_config(str(RECIPE))["data"]["transforms"])
    steps = QUICK_STEPS if quick else make_config(str(RECIPE))["train"]["steps"]
    jobs = []
    for s in SEEDS[:1] if quick else SEEDS:
        base = [f"--train.seed={s}", *RUN_OVERRIDES]
        jobs.append({"model": "stargan", "seed": s, "n_test": n_test, "domains": domains,
                     "overrides": base + step_overrides(QUICK_STEPS if quick else None)})
        jobs.append({"model": "cyclegan", "seed": s, "n_test": n_test, "domains": domains,
                     "overrides": base + step_overrides(steps)})  # the same generator-step budget
    return jobs


def summarise(runs: list[dict], *, quick: bool, n_test: int, workers: int, wall_seconds: float,
              note: str | None = None) -> dict[str, Any]:
    """The result of a ``stargan`` bench from its run records (``_one``): per-pair cells, summary, targets."""
    star = [r for r in runs if r["model"] == "stargan"]
    cyc = [r for r in runs if r["model"] == "cyclegan"]
    domains = list(dict.fromkeys(p["source"] for p in star[0]["pairs"]))
    cells = []
    for model, rs in (("StarGAN", star), ("CycleGAN (this pair only)", cyc)):
        for k, p in enumerate(rs[0]["pairs"]):
            vals = [r["pairs"][k] for r in rs]
            cells.append({"model": model, "source": p["source"], "target": p["target"], "seeds": len(rs),
                          "psnr_do_nothing": p["psnr_do_nothing"],
                          **{m: mean_ci([v[m] for v in vals if v[m] is not None]) for m in
                             ("psnr", "l1", "content", "d_cls", "probe")}})
    same_pair = [next(p["psnr"] for p in r["pairs"] if (p["source"], p["target"]) == PAIR) for r in star]
    summary = {"stargan_mean_psnr": mean_ci([r["mean_psnr"] for r in star]),
               "stargan_pair_psnr": mean_ci(same_pair),
               "cyclegan_pair_psnr": mean_ci([r["mean_psnr"] for r in cyc]),
               "stargan_cpu_s": mean_ci([r["cpu_s"] for r in star]),
               "cyclegan_cpu_s": mean_ci([r["cpu_s"] for r in cyc])}
    result = {"benchmark": "stargan", "quick": quick, "machine": f"{machine_line(1)} (2-core CPU, shared with "
              f"other jobs); {workers} runs at a time, 1 thread each", "threads": 1, "n_test": n_test,
              "domains": domains, "steps": star[0]["steps"], "d_steps": star[0]["d_steps"],
              "recipes": {"stargan": "configs/stargan/fmnist-domains.yaml",
                          "cyclegan": "configs/cyclegan/fmnist-tint.yaml"},
              "overrides": {"stargan": [*RUN_OVERRIDES, "--train.seed=S",
                                        *step_overrides(QUICK_STEPS if quick else None)],
                            "cyclegan": [*RUN_OVERRIDES, "--train.seed=S", *step_overrides(star[0]["steps"])]},
              "content_original": star[0]["content_original"], "targets": TARGETS,
              "wall_seconds": wall_seconds, "note": note, "summary": summary, "cells": cells, "runs": runs}
    return result


@BENCHMARKS.register("stargan")
def run(*, quick: bool = False, out: str | None = None, workers: int = 2) -> dict[str, Any]:
    """StarGAN recipe, 3 seeds: per-pair PSNR to the true translation and content, beside a one-pair CycleGAN."""
    n_test = 200 if quick else 1000
    jobs = _jobs(quick, n_test)
    partial = partial_path(out)
    t0 = time.perf_counter()
    runs = run_jobs(jobs, _one, lambda r: (r["model"], r["seed"]), partial=partial, workers=workers,
                    report=lambda r: f"stargan bench: {r['model']} seed {r['seed']}: mean PSNR "
                                     f"{r['mean_psnr']:.2f} dB, min content "
                                     f"{min(p['content'] for p in r['pairs']):.3f} ({r['cpu_s']:.0f} CPU-s)")
    result = summarise(runs, quick=quick, n_test=n_test, workers=workers, wall_seconds=time.perf_counter() - t0)
    write(result, out, markdown(result))
    if out:
        finish(partial)
    return result


def markdown(result: dict[str, Any]) -> list[str]:
    """The markdown table of a ``stargan`` result."""
    cmd = "ganforge bench stargan" + (" --quick" if result["quick"] else "")
    s, ov = result["summary"], result["overrides"]
    lines = [
        f"# StarGAN over {len(result['domains'])} Fashion-MNIST domains{' (quick)' if result['quick'] else ''}", "",
        f"Made by `{cmd}`. Machine: {result['machine']}. StarGAN: `{result['recipes']['stargan']}` as committed "
        f"(domains {', '.join(result['domains'])}; {result['steps']} generator steps, {result['d_steps']} critic "
        f"steps each) with only `{' '.join(ov['stargan'])}`. CycleGAN on {PAIR[0]} -> {PAIR[1]}: "
        f"`{result['recipes']['cyclegan']}` with `{' '.join(ov['cyclegan'])}` (the same generator-step budget). "
        f"Test: the first {result['n_test']} fmnist test images x; source T_i(x), truth T_j(x); PSNR in dB on "
        "[-1, 1] (range 2); content = the shipped classifier on T_j^-1(G(T_i(x), j)) (on the untouched test "
        f"images: {result['content_original']:.3f}); D domain = D's auxiliary head; probe = logistic regression on "
        "pixels of 1,500 real domain images. Mean ± half-width of the 95 % Student-t interval over seeds. CPU-s = "
        f"user + system time of one run's training at 1 thread. Wall time of the bench "
        f"{result['wall_seconds'] / 60:.1f} min.", "",
        *([result["note"], ""] if result.get("note") else []),  # how a resumed run reused records, say
        "| model | source -> target | seeds | PSNR to truth | PSNR do-nothing | L1 | content acc | D domain acc | "
        "probe domain acc |", "|---|---|---|---|---|---|---|---|---|"]
    for c in result["cells"]:
        lines.append(f"| {c['model']} | {c['source']} -> {c['target']} | {c['seeds']} | "
                     f"{ci_text(c['psnr'], fmt='{:.2f}')} | "
                     f"{c['psnr_do_nothing']:.2f} | {ci_text(c['l1'])} | {ci_text(c['content'])} | "
                     f"{ci_text(c['d_cls'])} | "
                     f"{ci_text(c['probe'])} |")
    star = [c for c in result["cells"] if c["model"] == "StarGAN"]
    ok_content = all(c["content"]["mean"] >= TARGETS["content"] for c in star)
    ok_psnr = all(c["psnr"]["mean"] > c["psnr_do_nothing"] for c in star)
    gap = s["cyclegan_pair_psnr"]["mean"] - s["stargan_mean_psnr"]["mean"]
    db = {k: ci_text(s[k], fmt="{:.2f}") for k in ("stargan_mean_psnr", "stargan_pair_psnr", "cyclegan_pair_psnr")}
    cpu = {k: ci_text(s[k], fmt="{:.0f}") for k in ("stargan_cpu_s", "cyclegan_cpu_s")}
    lines += ["", f"StarGAN mean PSNR over the {len(star)} pairs: {db['stargan_mean_psnr']} dB; on "
              f"{PAIR[0]} -> {PAIR[1]}: {db['stargan_pair_psnr']} dB; CycleGAN on that pair: "
              f"{db['cyclegan_pair_psnr']} dB (CycleGAN minus StarGAN mean: {gap:.2f} dB). CPU-s per "
              f"run: StarGAN {cpu['stargan_cpu_s']}, CycleGAN {cpu['cyclegan_cpu_s']}; total CPU-s of the bench's "
              f"training: {sum(r['cpu_s'] for r in result['runs']):.0f}.", "",
              f"Targets (issue 13, means): content >= {TARGETS['content']} on every pair: "
              f"{'met' if ok_content else 'not met'}; PSNR above doing nothing on every pair: "
              f"{'met' if ok_psnr else 'not met'}; mean PSNR within {TARGETS['psnr_gap_db']} dB of the CycleGAN: "
              f"{'met' if gap <= TARGETS['psnr_gap_db'] else 'not met'}."]
    return lines
