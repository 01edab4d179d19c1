"""Train the Fashion-MNIST classifier that ships as ganforge's offline feature extractor.

    .venv/bin/python scripts/train_fmnist_cnn.py [--epochs 11] [--out ganforge/weights]

Deterministic (seed 0, CPU). Recipe: SGD with Nesterov momentum 0.9, one-cycle
learning rate (peak 0.1), weight decay 5e-4, batch 128, augmentation = random
28x28 crop of the image zero-padded (background) by 2 pixels + horizontal flip.
Writes ``fmnist_cnn.safetensors`` and ``fmnist_cnn.json`` (measured test
accuracy on all 10,000 test images, the settings, the weights' sha256).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ganforge.data.fmnist import fmnist
from ganforge.metrics.fmnist_cnn import FmnistCNN


def augment(x: torch.Tensor, g: torch.Generator, pad: int = 2) -> torch.Tensor:
    """Random crop of the padded image and random horizontal flip, per sample."""
    b, _, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad), value=-1.0)  # -1 = black background in [-1, 1]
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=g)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=g)
    rows = (dy[:, None] + torch.arange(h))[:, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, :]
    out = xp[torch.arange(b)[:, None, None], 0, rows, cols].unsqueeze(1)
    flip = torch.rand(b, generator=g) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


@torch.no_grad()
def accuracy(net: FmnistCNN, x: torch.Tensor, y: torch.Tensor, bs: int = 1000) -> float:
    net.eval()
    correct = sum((net(x[i : i + bs]).argmax(1) == y[i : i + bs]).sum().item() for i in range(0, len(x), bs))
    return correct / len(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=11)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "ganforge" / "weights"))
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    train, test = fmnist(split="train"), fmnist(split="test")
    xtr, ytr = train.to_model(train.x), train.y
    xte, yte = test.to_model(test.x), test.y

    widths = (32, 64, 128)
    net = FmnistCNN(widths).to(memory_format=torch.channels_last)  # ~25 % faster convolutions on CPU
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay)
    steps_per_epoch = len(xtr) // args.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch, pct_start=0.2)
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    history = []
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(len(xtr), generator=g)
        total = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * args.batch_size : (s + 1) * args.batch_size]
            xb = augment(xtr[idx], g).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(net(xb), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        acc = accuracy(net, xte, yte)
        history.append({"epoch": epoch + 1, "train_loss": total / steps_per_epoch, "test_acc": acc,
                        "elapsed_s": round(time.time() - t0, 1)})
        print(json.dumps(history[-1]), flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    tmp = out / "fmnist_cnn.safetensors.tmp"
    save_file(state, str(tmp))
    os.replace(tmp, out / "fmnist_cnn.safetensors")
    sha = hashlib.sha256((out / "fmnist_cnn.safetensors").read_bytes()).hexdigest()
    record = {
        "architecture": "ganforge.metrics.fmnist_cnn.FmnistCNN",
        "widths": list(widths),
        "feature_dim": net.embed[2].out_features,
        "input": "(N, 1, 28, 28) float32 in [-1, 1] (uint8 / 127.5 - 1)",
        "test_accuracy": history[-1]["test_acc"],
        "test_images": len(xte),
        "train_images": len(xtr),
        "settings": {k: v for k, v in vars(args).items() if k != "out"}
        | {"optimizer": "SGD nesterov momentum 0.9", "schedule": "OneCycleLR pct_start 0.2",
           "augmentation": "random crop 28 of pad-2 (value -1) + horizontal flip p=0.5", "dropout": 0.3},
        "train_time_s": round(time.time() - t0, 1),
        "machine": f"{platform.machine()}, {args.threads} CPU threads, torch {torch.__version__}",
        "history": history,
        "sha256": sha,
    }
    (out / "fmnist_cnn.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"test accuracy {record['test_accuracy']:.4f}; wrote {out}/fmnist_cnn.safetensors (sha256 {sha[:12]})")


if __name__ == "__main__":
    main()
