"""FID of one trained DCGAN generator sampled with its batch norm in different modes.

    python scripts/fmnist_bn_sampling.py RUN_OR_CHECKPOINT [--n 10000 --seed 0 --metrics fid,classes]

A generator with batch norm trains on batch statistics; at sampling time there are several choices:

- ``recomputed`` (what ``Game.sample`` does, ``Game.sampling_net``): eval mode with statistics
  averaged over 16 fresh batches of 256 of the current weights (BigGAN's standing statistics);
- ``running``: eval mode with the running averages kept during training (momentum 0.1);
- ``batch64`` / ``batch1024``: train mode, every batch of 64 (the training batch) or 1024 normalised
  by its own statistics (as during training).

Scores use ``ganforge.metrics.evaluate`` (fmnist-cnn features, vs the test split), the raw generator.
"""

from __future__ import annotations

import argparse
import copy
import json

import torch

from ganforge import api
from ganforge.metrics.evaluate import evaluate


@torch.no_grad()
def samples(game, mode: str, n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if mode == "recomputed":
        return game.sample(n, generator=gen)
    g = copy.deepcopy(game.nets["g"])
    bs = {"running": 1024, "batch64": 64, "batch1024": 1024}[mode]
    g.train(mode != "running")
    for m in g.modules():  # momentum 0: train-mode batches leave the copy's running statistics as trained
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = 0.0
    out = [g(game.noise(min(bs, n - i), game.z_dim, generator=gen)) for i in range(0, n, bs)]
    return torch.cat(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("path")
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--metrics", default="fid,classes")
    p.add_argument("--modes", default="recomputed,running,batch64,batch1024")
    a = p.parse_args()
    torch.set_num_threads(1)
    game, _, step = api.load_game(a.path, use_ema=False)
    res = {"path": a.path, "step": step, "n": a.n}
    for mode in a.modes.split(","):
        out = evaluate(samples(game, mode, a.n, a.seed), metrics=tuple(a.metrics.split(",")), n=a.n)
        res[mode] = {k: v for k, v in out.items() if isinstance(v, (int, float))}
        print(mode, res[mode], flush=True)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
