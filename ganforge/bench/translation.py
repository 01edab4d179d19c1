"""Translation benchmarks scored against a known ground truth: shared helpers and ``ganforge bench srgan``.

Domains are Fashion-MNIST under known invertible transforms T
(``ganforge.data.domains``), so the true translation T(a) of every test image
is known and a score is a distance, not an opinion. The shipped classifier
(extractor ``fmnist-cnn``) checks that content survives: it reads
T^-1(G(a)) and must still name the garment.

- ``cyclegan`` and ``stargan``: ``ganforge.bench.cyclegan_bench`` and ``ganforge.bench.stargan_bench``,
  which train the shipped recipes over seeds and use the helpers here.
- ``srgan``: SRResNet (pixel loss) and SRGAN (adversarial + content loss on the classifier's
  features) at 2x and 4x: PSNR/SSIM against bicubic upsampling, classifier accuracy on SR,
  bicubic and original test images.

All runs are CPU-small (the numbers are for the stated budget, not converged
models): nets, steps and timings are in each JSON/markdown file.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ganforge.registry import BENCHMARKS

# ------------------------------------------------------------------------------------------- shared
LOAD_NOTE = ("Wall times were taken on 2 CPU cores shared with other jobs (load average between ~4 and ~25 "
             "during these runs), so wall s can be several times CPU s (this process's CPU time, 1 torch thread).")


def machine() -> str:
    from ganforge.bench.jobs import machine_line

    return machine_line()


def to_model(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return x.float() / 127.5 - 1


def train_game(cfg: dict):
    """Train ``cfg`` (a raw config dict) in a temporary run directory; returns (game, (wall s, CPU s))."""
    return _train_from(cfg, None)


def _train_from(cfg: dict, init_g: torch.nn.Module | None):
    """Like ``train_game``, with G started from ``init_g``'s weights (SRGAN starts from SRResNet)."""
    from ganforge.config import load_config
    from ganforge.training.trainer import Trainer

    with tempfile.TemporaryDirectory(prefix="ganforge-bench-") as d:
        trainer = Trainer(load_config(None, base=cfg), d, quiet=True)
        if init_g is not None:
            trainer.game.nets["g"].load_state_dict(init_g.state_dict())
        t0, c0 = time.time(), time.process_time()
        trainer.fit()
        secs = (time.time() - t0, time.process_time() - c0)
    trainer.game.eval()
    return trainer.game, secs


class Judge:
    """The shipped classifier as judge: accuracy on images and FID between image sets (its features)."""

    def __init__(self) -> None:
        from ganforge.metrics.extractors import build_extractor

        self.ex = build_extractor("fmnist-cnn")

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        _, logits = self.ex.extract(images.clamp(-1, 1))
        return float((torch.from_numpy(logits).argmax(1) == labels).double().mean())

    def fid(self, x: torch.Tensor, y: torch.Tensor) -> float:
        from ganforge.metrics.math import fid

        fx, _ = self.ex.extract(x.clamp(-1, 1))
        fy, _ = self.ex.extract(y.clamp(-1, 1))
        return fid(fy, fx)


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean per-image PSNR (dB) of float images in [-1, 1] (data range 2)."""
    from ganforge.metrics.math import psnr as _psnr

    return _psnr(x.clamp(-1, 1).double().numpy(), y.clamp(-1, 1).double().numpy(), data_range=2.0)


def ssim(x: torch.Tensor, y: torch.Tensor) -> float:
    from ganforge.metrics.math import ssim as _ssim

    return _ssim(x.clamp(-1, 1).double().numpy(), y.clamp(-1, 1).double().numpy(), data_range=2.0)


def test_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` Fashion-MNIST test images (uint8) and labels."""
    from ganforge.data.fmnist import fmnist

    d = fmnist(split="test", limit=n)
    return d.x, d.y


def write(result: dict[str, Any], out: str | None, lines: list[str]) -> None:
    """JSON at ``out`` and the markdown ``lines`` beside it (``.md``)."""
    if not out:
        return
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")


def _f(v: Any, nd: int = 3) -> str:
    if v is None:
        return "-"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def _net_cfg(roles: dict[str, dict]) -> dict:
    return {r: dict(spec) for r, spec in roles.items()}


# ------------------------------------------------------------------------------------------- SRGAN
def srgan_config(scale: int, *, steps: int, limit: int, adversarial: bool, batch: int = 32, channels: int = 32,
                 n_blocks: int = 4, seed: int = 0) -> dict:
    """SRResNet (pixel loss) or SRGAN (classifier-feature content + 1e-3 adversarial) with CPU-small nets."""
    game = ({"name": "srgan", "pixel": 0.0, "content": 1.0, "adversarial": 1e-3} if adversarial
            else {"name": "srgan", "pixel": 1.0, "content": 0.0, "adversarial": 0.0})
    return {
        "name": f"bench-{'srgan' if adversarial else 'srresnet'}-x{scale}",
        "data": {"name": "fmnist-sr", "scale": scale, "limit": limit},
        "game": game,
        "objective": {"name": "ns"},
        "nets": {"g": {"name": "srresnet", "channels": channels, "n_blocks": n_blocks, "residual": True},
                 "d": {"name": "srgan-d", "ndf": 16, "n_blocks": 4, "hidden": 64}},
        "optim": {k: {"name": "adam", "lr": 5e-4, "betas": [0.9, 0.999]} for k in ("g", "d")},
        "train": {"steps": steps, "batch_size": batch, "seed": seed, "device": "cpu", "threads": 1,
                  "log_every": max(1, steps // 10)},
        "eval": {"every": 0, "n": 64, "samples": False},
        "checkpoint": {"every": 0, "keep": 1},
    }


@BENCHMARKS.register("srgan")
def run_srgan(*, quick: bool = False, out: str | None = None) -> dict[str, Any]:
    """SRResNet and SRGAN at 2x and 4x on Fashion-MNIST: PSNR/SSIM vs bicubic, classifier accuracy."""
    from ganforge.data.domains import downsample, upsample_bicubic

    torch.set_num_threads(1)
    steps, gan_steps, limit, n_test = (20, 10, 2000, 200) if quick else (600, 200, 20000, 1000)
    hr_u8, y = test_images(n_test)
    hr = to_model(hr_u8)
    judge = Judge()
    rows = []
    acc_hr = judge.accuracy(hr, y)
    for scale in (2, 4):
        lr = to_model(downsample(hr_u8, scale))
        bic = upsample_bicubic(lr, scale)
        rows.append({"scale": scale, "model": "bicubic", "psnr": psnr(bic, hr), "ssim": ssim(bic, hr),
                     "acc": judge.accuracy(bic, y), "acc_hr": acc_hr, "steps": 0, "train_s": 0.0, "train_cpu_s": 0.0})
        prev = None
        for adversarial, n_steps in ((False, steps), (True, gan_steps)):
            cfg = srgan_config(scale, steps=n_steps, limit=limit, adversarial=adversarial)
            game, (secs, cpu) = _train_from(cfg, prev)
            sr = game.super_resolve(lr).clamp(-1, 1)
            rows.append({"scale": scale, "model": "SRGAN (from SRResNet)" if adversarial else "SRResNet",
                         "psnr": psnr(sr, hr), "ssim": ssim(sr, hr), "acc": judge.accuracy(sr, y), "acc_hr": acc_hr,
                         "steps": n_steps, "train_s": secs, "train_cpu_s": cpu})
            prev = game.nets["g"]
    g = cfg["nets"]["g"]
    result = {"benchmark": "srgan", "quick": quick, "machine": machine(), "n_test": n_test, "train_images": limit,
              "threads": torch.get_num_threads(),  # the count the runs trained with
              "batch_size": cfg["train"]["batch_size"], "generator": g, "critic": cfg["nets"]["d"],
              "srresnet_loss": "MSE",
              "srgan_loss": "MSE of fmnist-cnn conv features (N,128,7,7) + 1e-3 x ns adversarial",
              "lr": "adam 5e-4 (0.9, 0.999)", "rows": rows}
    write(result, out, srgan_markdown(result))
    return result


def srgan_markdown(result: dict[str, Any]) -> list[str]:
    """The markdown table of an ``srgan`` result."""
    limit, n_test, g = result["train_images"], result["n_test"], result["generator"]
    lines = [
        f"# Super-resolution on Fashion-MNIST ({'quick' if result['quick'] else 'full'})", "",
        f"Machine: {result['machine']}. LR = Pillow bicubic downsampling of the 28x28 test images; bicubic = "
        "torch bicubic upsampling of LR. SRResNet: MSE loss; SRGAN: started from that SRResNet, content loss on "
        "the shipped classifier's last conv features (VGG19 is not used offline) + 1e-3 x non-saturating "
        f"adversarial loss (critic srgan-d). G = {g} (residual: a global bicubic skip, not in the paper). "
        f"Train: {limit} fmnist train images, batch {result['batch_size']}, Adam 5e-4. Test: first {n_test} "
        "test images; PSNR in dB on [-1, 1] (range 2), SSIM Gaussian window 11 (Wang et al. 2004).", "",
        "| scale | model | steps | PSNR | SSIM | classifier acc on output | acc on original HR | train wall s | "
        "train CPU s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['scale']}x | {r['model']} | {r['steps']} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
                     f"{r['acc']:.3f} | {r['acc_hr']:.3f} | {r['train_s']:.0f} | {r['train_cpu_s']:.0f} |")
    lines += ["", "Published pattern (BENCHMARKS.md, 4x Set5): bicubic 28.43, SRResNet 32.05, SRGAN 29.40 dB PSNR: "
              "the pixel-loss net beats bicubic, the adversarial one trades PSNR for perceptual quality.", "",
              "Caveat: SRGAN's content loss is computed on the features of the same classifier that scores "
              "'classifier acc', so SRGAN's accuracy gain is partly by construction; PSNR and SSIM are the "
              "independent scores.", "", LOAD_NOTE]
    return lines
