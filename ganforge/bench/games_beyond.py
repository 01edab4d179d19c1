"""Benchmarks of the games beyond G vs D (issue 7), each scored against a ground truth.

    ganforge bench cgan   # shipped classifier's accuracy on samples of each requested class; per-class FID
    ganforge bench ssgan  # test accuracy with 100 labels/class vs the same classifier on those labels alone
    ganforge bench bigan  # linear probe on E(x) vs a random E and raw pixels; G(E(x)) reconstructions
    ganforge bench dann   # target accuracy: source-only, DANN, target labels (upper bound)
    ganforge bench adda   # target accuracy: source-only (ADDA's own pretrained encoder), ADDA

Each trains its recipe (configs/<game>/) through the one trainer, with fewer
steps than the recipe when the machine is a shared CPU; the JSON records the
exact overrides, steps and seconds. ``--quick`` runs a few hundred steps on
small evaluation sets (under a minute on an idle 2-core CPU): a smoke run,
not a result.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.registry import BENCHMARKS

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _start() -> float:
    """One torch thread for training and evaluation (a shared CPU thrashes with more); the start time."""
    torch.set_num_threads(1)
    return time.time()


def _machine() -> str:
    return (f"{platform.machine()}, {os.cpu_count()} CPUs (shared), torch {torch.__version__} "
            f"({torch.get_num_threads()} threads)")


def _train(recipe: str, overrides: list[str], run_dir: Path):
    """Train ``recipe`` with ``overrides`` in ``run_dir``; returns (trainer, seconds)."""
    from ganforge.config import load_config
    from ganforge.training.trainer import Trainer

    cfg = load_config(CONFIGS / recipe, overrides)
    t0 = time.time()
    tr = Trainer(cfg, run_dir, quiet=True)
    tr.fit()
    return tr, time.time() - t0


def _common(quick: bool, steps: int) -> list[str]:
    return [f"--train.steps={steps}", "--train.threads=1", "--eval.every=0", "--eval.samples=false",
            "--checkpoint.every=0", "--checkpoint.keep=1", f"--train.log_every={max(1, steps // 10)}",
            "--train.tensorboard=false"]


def _grid(images: torch.Tensor, rows: int, path: Path) -> None:
    """Float images in [-1, 1] (N, C, H, W) -> a PNG grid with ``rows`` rows."""
    from PIL import Image

    x = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    n, c, h, w = x.shape
    cols = n // rows
    path.parent.mkdir(parents=True, exist_ok=True)
    g = x[: rows * cols].reshape(rows, cols, c, h, w).permute(0, 3, 1, 4, 2).reshape(rows * h, cols * w, c)
    arr = g.numpy()
    Image.fromarray(arr[:, :, 0] if c == 1 else arr).resize((cols * w * 2, rows * h * 2), Image.NEAREST).save(path)


def _write(result: dict[str, Any], out: str, title: str, tables: list[tuple[list[str], list[list[Any]]]],
           notes: list[str]) -> None:
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# {title} ({'quick' if result['quick'] else 'full'})", "", f"Machine: {result['machine']}. "
             f"Total time {result['seconds']:.0f} s.", ""]
    for head, rows in tables:
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in rows:
            lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r) + " |")
        lines.append("")
    lines += notes
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")


def _side_file(out: str, suffix: str) -> Path:
    p = Path(out)
    return p.with_name(p.stem + suffix)


# --------------------------------------------------------------------------------------------- cGAN
@BENCHMARKS.register("cgan")
def cgan(*, quick: bool = False, out: str = "benchmarks/results/cgan.json") -> dict:
    """Conditional DCGAN: classifier accuracy on samples of each requested class (goal >= 90 %), per-class FID."""
    from ganforge.data.fmnist import CLASS_NAMES, fmnist
    from ganforge.metrics.extractors import build_extractor
    from ganforge.metrics.math import fid

    t0 = _start()
    steps, per_class = (150, 100) if quick else (9000, 500)
    overrides = _common(quick, steps) + ["--eval.n=100"]
    work = Path(tempfile.mkdtemp(prefix="bench-cgan-"))
    try:
        tr, train_s = _train("cgan/fmnist.yaml", overrides, work / "run")
        gen = torch.Generator().manual_seed(0)
        with tr.sampling_context():
            fakes = [tr.game.sample(per_class, generator=gen, c=torch.full((per_class,), k)) for k in range(10)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ex = build_extractor("fmnist-cnn")
    test, train = fmnist(split="test"), fmnist(split="train")
    rows, accs, fids, floors, real_hits = [], [], [], [], 0
    for k in range(10):
        f_feat, f_logits = ex.extract(fakes[k])
        acc = float((f_logits.argmax(1) == k).mean())
        r_feat, r_logits = ex.extract(test.x[test.y == k][:per_class])
        real_hits += int((r_logits.argmax(1) == k).sum())
        floor_feat, _ = ex.extract(train.x[train.y == k][:per_class])
        fd, fl = fid(r_feat, f_feat), fid(r_feat, floor_feat)
        accs.append(acc)
        fids.append(fd)
        floors.append(fl)
        rows.append([k, CLASS_NAMES[k], acc, fd, fl])
    real_acc = real_hits / (10 * per_class)  # on the same test images the FIDs use
    grid = torch.cat([f[:10] for f in fakes])
    _grid(grid, 10, _side_file(out, "_samples.png"))
    result = {"benchmark": "cgan", "quick": quick, "machine": _machine(), "recipe": "configs/cgan/fmnist.yaml",
              "overrides": overrides, "steps": steps, "train_seconds": round(train_s, 1),
              "samples_per_class": per_class, "accuracy": float(np.mean(accs)), "goal_accuracy": 0.9,
              "classifier_accuracy_on_real_test": real_acc, "mean_class_fid": float(np.mean(fids)),
              "mean_class_fid_floor_train_vs_test": float(np.mean(floors)),
              "per_class": [dict(zip(["class", "name", "accuracy", "fid", "fid_floor"], r, strict=True))
                            for r in rows], "seconds": round(time.time() - t0, 1)}
    if out:
        _write(result, out, "cGAN on Fashion-MNIST: accuracy of the shipped classifier on requested classes", [
            (["", "value"], [["samples per class", per_class], ["accuracy on generated (goal >= 0.90)",
                                                                  result["accuracy"]],
                             [f"classifier accuracy on real test images ({per_class}/class)", real_acc],
                             ["mean per-class FID (fmnist-cnn features)", result["mean_class_fid"]],
                             ["mean per-class FID floor (train vs test)", result["mean_class_fid_floor_train_vs_test"]],
                             ["training steps / seconds", f"{steps} / {train_s:.0f}"]]),
            (["class", "name", "accuracy", "FID vs test images of the class", "floor: train vs test"], rows)],
            [f"Per-class FID: {per_class} generated vs the first {per_class} test images of the class "
             "(fmnist-cnn 128-d features); the floor compares train and test images of the class at the same n.",
             f"Samples: {_side_file(out, '_samples.png').name} (row k = class k)."])
    return result


# -------------------------------------------------------------------------------------------- SSGAN
def _supervised_only(cfg, steps: int, seed: int) -> tuple[float, float]:
    """The SSGAN discriminator's net, trained by cross-entropy on the labelled part alone: (test acc, seconds)."""
    from ganforge.data.fmnist import fmnist
    from ganforge.games.ssgan import SSGAN
    from ganforge.training.build import build_data, build_game, build_optimizers
    from ganforge.training.trainer import seed_everything

    t0 = _start()
    seed_everything(seed)
    data = build_data(cfg)
    game = build_game(cfg, data)
    opt = build_optimizers(cfg, game)["d"]
    lab = data.info["parts"]["labelled"]
    d, bs = game.nets["d"], cfg.train.batch_size
    g = torch.Generator().manual_seed(seed)
    d.train()
    for _ in range(steps * cfg.train.d_steps):
        idx = torch.randint(0, len(lab), (bs,), generator=g)
        loss = torch.nn.functional.cross_entropy(d(lab.to_model(lab.x[idx])), lab.y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    assert isinstance(game, SSGAN)
    return game.accuracy(fmnist(split="test")), time.time() - t0


@BENCHMARKS.register("ssgan")
def ssgan(*, quick: bool = False, out: str = "benchmarks/results/ssgan.json") -> dict:
    """Semi-supervised GAN, 100 labels/class: test accuracy vs the same classifier trained on the labels alone."""
    from ganforge.config import load_config
    from ganforge.data.fmnist import fmnist

    t0 = _start()
    steps = 150 if quick else 5000
    overrides = _common(quick, steps) + ["--eval.n=100"]
    work = Path(tempfile.mkdtemp(prefix="bench-ssgan-"))
    try:
        tr, train_s = _train("ssgan/fmnist.yaml", overrides, work / "run")
        test = fmnist(split="test", limit=2000 if quick else None)
        acc = tr.game.accuracy(test)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cfg = load_config(CONFIGS / "ssgan/fmnist.yaml", overrides)
    base_acc, base_s = _supervised_only(cfg, steps, cfg.train.seed)
    n_lab = cfg["data"]["labels_per_class"] * 10
    result = {"benchmark": "ssgan", "quick": quick, "machine": _machine(), "recipe": "configs/ssgan/fmnist.yaml",
              "overrides": overrides, "steps": steps, "labels": n_lab, "test_images": len(test),
              "ssgan_test_accuracy": acc, "labels_only_test_accuracy": base_acc,
              "ssgan_seconds": round(train_s, 1), "labels_only_seconds": round(base_s, 1),
              "seconds": round(time.time() - t0, 1)}
    if out:
        _write(result, out, f"Semi-supervised GAN on Fashion-MNIST with {n_lab} labels", [
            (["model", "labels", "test accuracy", "D updates", "seconds"],
             [["SSGAN (K logits + implicit fake class, feature matching)", n_lab, acc, steps, train_s],
              ["same classifier, labels only (cross-entropy)", n_lab, base_acc, steps, base_s]])],
            ["Same net (nets.d of the recipe), optimizer, batch size and number of updates for both rows; the "
             "labels-only row sees the labelled part only. Salimans et al. report MNIST with 100 labels in total "
             "(not comparable: another data set and label budget)."])
    return result


# -------------------------------------------------------------------------------------------- BiGAN
def _probe(train_f: np.ndarray, train_y: np.ndarray, test_f: np.ndarray, test_y: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(train_f)
    clf = LogisticRegression(max_iter=300, C=1.0).fit(sc.transform(train_f), train_y)
    return float(clf.score(sc.transform(test_f), test_y))


@BENCHMARKS.register("bigan")
def bigan(*, quick: bool = False, out: str = "benchmarks/results/bigan.json") -> dict:
    """BiGAN on Fashion-MNIST: linear probe on E(x) vs a randomly initialised E and raw pixels; G(E(x)) grid."""
    from ganforge.data.fmnist import fmnist
    from ganforge.training.build import build_game
    from ganforge.training.trainer import seed_everything

    t0 = _start()
    steps, n_train, n_test = (150, 1000, 500) if quick else (3000, 5000, 2000)
    overrides = _common(quick, steps) + ["--eval.n=100"]
    work = Path(tempfile.mkdtemp(prefix="bench-bigan-"))
    try:
        tr, train_s = _train("bigan/fmnist.yaml", overrides, work / "run")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    train, test = fmnist(split="train", limit=n_train), fmnist(split="test", limit=n_test)
    xtr, xte = train.to_model(train.x), test.to_model(test.x)
    ytr, yte = train.y.numpy(), test.y.numpy()
    seed_everything(tr.cfg.train.seed)  # the same initialisation the trained run started from
    random_game = build_game(tr.cfg)
    rows = []
    for label, game in (("E(x), trained BiGAN encoder", tr.game), ("E(x), random initialisation", random_game)):
        acc = _probe(game.encode(xtr).numpy(), ytr, game.encode(xte).numpy(), yte)
        rows.append([label, game.z_dim, acc])
    rows.append(["raw pixels", int(xtr[0].numel()), _probe(xtr.flatten(1).numpy(), ytr, xte.flatten(1).numpy(), yte)])
    rec = tr.game.reconstruct(xte[:16])
    _grid(torch.cat([xte[:16], rec]), 2, _side_file(out, "_recon.png"))
    mse = float((tr.game.reconstruct(xte[:1000]) - xte[:1000]).pow(2).mean())
    result = {"benchmark": "bigan", "quick": quick, "machine": _machine(), "recipe": "configs/bigan/fmnist.yaml",
              "overrides": overrides, "steps": steps, "train_seconds": round(train_s, 1), "probe_train": n_train,
              "probe_test": n_test, "probe": [dict(zip(["features", "dim", "test_accuracy"], r, strict=True))
                                              for r in rows],
              "reconstruction_mse": mse, "seconds": round(time.time() - t0, 1)}
    if out:
        _write(result, out, "BiGAN on Fashion-MNIST: linear probe on the encoder", [
            (["features", "dim", f"probe test accuracy ({n_train} train / {n_test} test)"], rows)],
            ["Probe: standardised features, scikit-learn LogisticRegression (C=1, lbfgs, at most 300 iterations).",
             f"BiGAN trained {steps} steps in {train_s:.0f} s. Reconstructions G(E(x)) of test images "
             f"(top row: x, bottom: G(E(x))): {_side_file(out, '_recon.png').name}; mean squared error in [-1, 1] "
             f"units over 1000 test images: {mse:.3f}."])
    return result


# ----------------------------------------------------------------------------------- adaptation
PAPER_ROWS = [["MNIST -> MNIST-M", "", "0.7666 (DANN)", "", "(quoted) in ../shared/BENCHMARKS.md"],
              ["MNIST -> USPS", "0.752", "0.894 (ADDA)", "", "(quoted)"],
              ["SVHN -> MNIST", "0.601", "0.760 (ADDA)", "", "(quoted)"]]


def _target_test(quick: bool):
    from ganforge.data.fmnist_m import fmnist_m

    return fmnist_m(split="test", limit=2000 if quick else None)


def _adapt_run(recipe: str, overrides: list[str], work: Path, name: str):
    tr, secs = _train(recipe, overrides, work / name)
    return tr, secs


@BENCHMARKS.register("dann")
def dann(*, quick: bool = False, out: str = "benchmarks/results/dann.json") -> dict:
    """DANN Fashion-MNIST -> Fashion-MNIST-M: target accuracy of source-only, DANN and target-label training."""
    from ganforge.data.fmnist import fmnist

    t0 = _start()
    steps = 200 if quick else 3000
    base = _common(quick, steps) + ["--eval.n=500", f"--game.ramp_steps={steps}", "--train.batch_size=32"]
    if quick:
        base += ["--data.source.limit=5000", "--data.target.limit=5000", "--data.test.limit=2000"]
    runs = {
        "source only (lam = 0)": base + ["--game.lam=0"],
        "DANN (gradient reversal)": base,
        "target labels (upper bound)": base + ["--game.lam=0", "--data.source.name=fmnist-m",
                                               "--data.source.start=30000"],
    }
    target_test = _target_test(quick)
    src_test = fmnist(split="test", limit=2000 if quick else None)
    src_test.x = src_test.x.repeat(1, 3, 1, 1)
    rows, records = [], []
    work = Path(tempfile.mkdtemp(prefix="bench-dann-"))
    try:
        for label, ov in runs.items():
            tr, secs = _adapt_run("dann/fmnist_m.yaml", ov, work, str(len(rows)))
            tacc, sacc = tr.game.accuracy(target_test), tr.game.accuracy(src_test)
            rows.append([label, sacc, tacc, steps, round(secs)])
            records.append({"run": label, "overrides": ov, "source_test_accuracy": sacc,
                            "target_test_accuracy": tacc, "seconds": round(secs, 1)})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"benchmark": "dann", "quick": quick, "machine": _machine(), "recipe": "configs/dann/fmnist_m.yaml",
              "steps": steps, "target_test_images": len(target_test), "runs": records,
              "seconds": round(time.time() - t0, 1)}
    if out:
        _write(result, out, "DANN: Fashion-MNIST -> Fashion-MNIST-M", [
            (["run", "source test acc", "target test acc", "steps", "seconds"], rows),
            (["published task", "source only", "adapted", "train on target", "source"], PAPER_ROWS)],
            ["Source: Fashion-MNIST train[0:30000] (grey repeated to 3 channels); target: Fashion-MNIST-M "
             "train[30000:60000] (labels unused except by the upper-bound row, which trains on them); "
             f"accuracies on the {len(target_test)} Fashion-MNIST-M test images and the source test images. "
             "Same nets, optimizer and steps in every row; lambda ramps 0 -> 1 by the paper's schedule.",
             "The published rows are digits with photo textures; ours are garments with procedural textures: "
             "compare the pattern (adapted well above source only, below target labels), not the numbers."])
    return result


@BENCHMARKS.register("adda")
def adda(*, quick: bool = False, out: str = "benchmarks/results/adda.json") -> dict:
    """ADDA Fashion-MNIST -> Fashion-MNIST-M: target accuracy of the pretrained source model and after adaptation."""
    t0 = _start()
    pre, steps = (100, 200) if quick else (1000, 2500)
    overrides = _common(quick, steps) + ["--eval.n=500", f"--game.pretrain_steps={pre}"]
    if quick:
        overrides += ["--data.source.limit=5000", "--data.target.limit=5000", "--data.test.limit=2000"]
    target_test = _target_test(quick)
    work = Path(tempfile.mkdtemp(prefix="bench-adda-"))
    try:
        tr, secs = _adapt_run("adda/fmnist_m.yaml", overrides, work, "run")
        g = tr.game
        x = target_test.to_model(target_test.x)
        with torch.no_grad():
            g.eval()
            src_pred = torch.cat([g.source_logits(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
            g.train()
        src_acc = float((src_pred == target_test.y).float().mean())
        adda_acc = g.accuracy(target_test)
        curve = [json.loads(ln) for ln in (work / "run" / "losses.jsonl").read_text().splitlines() if ln.strip()]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [["source only (ADDA's pretrained e_s + c)", src_acc, pre],
            ["ADDA (e_t adapted, c fixed)", adda_acc, steps]]
    result = {"benchmark": "adda", "quick": quick, "machine": _machine(), "recipe": "configs/adda/fmnist_m.yaml",
              "overrides": overrides, "pretrain_steps": pre, "steps": steps, "target_test_images": len(target_test),
              "source_only_target_accuracy": src_acc, "adda_target_accuracy": adda_acc,
              "train_seconds": round(secs, 1), "losses": curve, "seconds": round(time.time() - t0, 1)}
    if out:
        _write(result, out, "ADDA: Fashion-MNIST -> Fashion-MNIST-M", [
            (["model", "target test accuracy", "steps"], rows),
            (["published task", "source only", "adapted", "train on target", "source"], PAPER_ROWS)],
            [f"{pre} pretraining steps on labelled source images, then {steps - pre} adaptation steps (critic and "
             f"target encoder) on unlabelled target images; {secs:.0f} s. Accuracies on the {len(target_test)} "
             "Fashion-MNIST-M test images. See dann.md for source-only/target-label rows with the DANN nets."])
    return result
