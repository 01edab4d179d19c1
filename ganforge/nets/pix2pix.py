"""pix2pix's generator: the U-Net (Ronneberger et al. 2015) as Isola et al. 2017 use it, and patch geometry.

``unet`` (pix2pix Sec. 3.2.1, App. 6.1.1): ``n_down`` encoder blocks of 4x4 stride-2 convs
(LeakyReLU 0.2 before every conv but the first, a norm after every conv but the first and the
innermost), widths ngf * min(2^i, max_mult), then the mirror-image decoder of 4x4 stride-2
transposed convs (ReLU before, norm after), where decoder block i reads the concatenation of the
block below's output and encoder block i's activation (the skip connections), and the outermost
block ends in ``out_activation`` (tanh). Dropout ``dropout`` (0.5) follows the norm of the
``n_dropout`` innermost decoder blocks (the paper's CD512 x 3 at 256 px): pix2pix's only noise
source (the game decides whether it stays on at test time). ``skips: false`` gives the paper's
encoder-decoder ablation (Fig. 5: the same net without the skips).

By default the encoder halves the image down to 1x1 when H and W are powers of two (32 px: 5
blocks, 256 px: 8 as in the paper); otherwise as often as H and W stay even (28 px: 2 blocks,
7x7 bottleneck). ``norm: instance`` is the default: the paper trains with batch size 1 (where
batch norm *is* instance norm) and uses test-batch statistics at test time; batch norm with a
larger batch would make a test image's translation depend on its batch-mates.

``patch_geometry`` gives a convolutional critic's receptive field and output map by walking its
convs (for ``patchgan``: stride-2 4x4 convs then two stride-1 3x3 convs, so n_layers=3 sees 54x54
patches where the paper's 4x4 stride-1 convs see 70x70; n_layers=1 sees 12x12 and 2 sees 26x26).
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.nets.common import norm_layer
from ganforge.nets.translation import _image_shape
from ganforge.registry import NETS


def max_halvings(h: int, w: int) -> int:
    """How many times both sides can be halved exactly (down to 1x1 at most)."""
    n = 0
    while h % 2 == 0 and w % 2 == 0 and min(h, w) > 1:
        h, w, n = h // 2, w // 2, n + 1
    return n


@NETS.register("unet")
class UNet(nn.Module):
    """pix2pix U-Net x (N, C_in, H, W) -> (N, C_out, H, W); H and W divisible by 2^n_down."""

    def __init__(self, *, in_shape, out_shape, n_classes: int = 0, ngf: int = 64, n_down: int | None = None,
                 max_mult: int = 8, norm: str = "instance", dropout: float = 0.5, n_dropout: int = 3,
                 skips: bool = True, out_activation: str = "tanh") -> None:
        super().__init__()
        c_in, h, w = _image_shape(in_shape, "input", "unet")
        c_out, ho, wo = _image_shape(out_shape, "output", "unet")
        most = max_halvings(h, w)
        n = most if n_down is None else n_down
        checks = [
            ((h, w) != (ho, wo), f"unet keeps the image size; input {h}x{w} != output {ho}x{wo}"),
            (n_classes != 0, "unet is unconditional (n_classes must be 0); it is conditioned on its input image"),
            (ngf < 1 or max_mult < 1, f"unet needs ngf >= 1 and max_mult >= 1, got {ngf}, {max_mult}"),
            (not 1 <= n <= most, f"unet n_down must be in [1, {most}] for {h}x{w} images (each block halves H "
                                 f"and W exactly), got {n}"),
            (not 0.0 <= dropout < 1.0, f"unet dropout must lie in [0, 1), got {dropout}"),
            (n_dropout < 0, f"unet n_dropout must be >= 0, got {n_dropout}"),
            (out_activation not in ("tanh", "none"), f"unet out_activation must be tanh or none, got "
                                                     f"{out_activation!r}"),
        ]
        for bad, msg in checks:
            if bad:
                raise ConfigError(msg)
        norm_layer(norm, 1, 2)
        self.n_down, self.skips = n, skips
        ch = [ngf * min(2**i, max_mult) for i in range(n)]
        self.down = nn.ModuleList()
        for i in range(n):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(c_in if i == 0 else ch[i - 1], ch[i], 4, 2, 1))
            if 0 < i < n - 1:  # the outermost and innermost blocks have no norm (a 1x1 map has no statistics)
                layers.append(norm_layer(norm, ch[i], 2))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for i in range(n):  # up[i] maps level i (H / 2^(i+1)) to level i - 1 (H / 2^i)
            width = ch[i] * (2 if skips and i < n - 1 else 1)
            target = c_out if i == 0 else ch[i - 1]
            layers = [nn.ReLU(), nn.ConvTranspose2d(width, target, 4, 2, 1)]
            if i > 0:
                layers.append(norm_layer(norm, target, 2))
                if i >= n - n_dropout and dropout > 0:
                    layers.append(nn.Dropout(dropout))
            elif out_activation == "tanh":
                layers.append(nn.Tanh())
            self.up.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if c is not None:
            raise ValueError("unet is unconditional but was given c")
        acts = []
        for block in self.down:
            x = block(x)
            acts.append(x)
        u = self.up[-1](acts[-1])
        for i in range(self.n_down - 2, -1, -1):
            u = self.up[i](torch.cat([u, acts[i]], 1) if self.skips else u)
        return u


def patch_geometry(net: nn.Module, in_shape: tuple[int, int, int]) -> dict[str, int | tuple[int, ...]]:
    """A conv critic's receptive field (pixels a side) and output map shape for one input of ``in_shape``.

    The receptive field follows the convs in order, r_in = (r_out - 1) * stride + kernel, read back
    from one output unit (Araujo et al. 2019's recurrence; dilation and pooling are not handled).
    """
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    pools = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)
    if any(m.dilation != (1, 1) for m in convs) or any(isinstance(m, pools) for m in net.modules()):
        raise ValueError("patch_geometry handles plain convolutions only (no dilation, no pooling)")
    r = 1
    for m in reversed(convs):
        r = (r - 1) * m.stride[0] + m.kernel_size[0]
    was = net.training
    with torch.no_grad():
        out = net.eval()(torch.zeros(1, *in_shape))
    net.train(was)
    return {"receptive_field": r, "map": tuple(out.shape[1:])}
