"""ResNet generator and critic of SNGAN / WGAN-GP, with SAGAN self-attention and BigGAN-style conditioning.

The architecture of Miyato et al. 2018 (SNGAN, appendix B, Tables 4-6), the
residual nets of Gulrajani et al. 2017 (WGAN-GP, appendix F) before it:

- generator: z -> linear to a (C0, 4, 4) map -> ``n`` up blocks -> BN, ReLU,
  conv3x3 to the image channels, tanh. An up block is
  BN, ReLU, nearest x2 upsample, conv3x3, BN, ReLU, conv3x3, plus the
  shortcut upsample -> conv1x1;
- critic: an "optimized" first block (conv3x3, ReLU, conv3x3, avg-pool; shortcut
  avg-pool -> conv1x1) and residual down blocks (ReLU, conv3x3, ReLU, conv3x3,
  avg-pool; shortcut conv1x1 -> avg-pool) down to 8x8, then ``extra_blocks``
  blocks without downsampling (2 in SNGAN's CIFAR critic), ReLU, global *sum*
  pooling, a linear output. No normalisation layers in the critic: spectral
  norm (``spectral_norm``, on by default for the critic, off for the
  generator) or a gradient penalty controls it.
- weights: Xavier-uniform (gain sqrt(2) in residual convs, 1 in shortcuts and
  linear layers), zero biases, as in the SNGAN code.

Resolution: square images whose side is a power of two, at least 16 (4 -> 16
is 2 doublings, 32 is 3, 64 is 4, ...). 28x28 Fashion-MNIST must be brought to 32:
``data: {resolution: 32, resize: pad}`` (a 2 px border, as the fmnist32 recipes do) or the
loader's default bilinear resize.

Widths: ``ch`` channels at the generator's full-resolution block and at the
critic's first block, doubling per halving of the resolution, capped at
``max_channels``. SNGAN's CIFAR-10 nets are constant-width: G ``ch=256,
max_channels=256``, D ``ch=128, max_channels=128``.

Self-attention (Zhang et al. 2019, SAGAN, Sec. 3): ``attention: r`` inserts
one attention block after the block whose output is r x r, in G and in D
(0 = none).

Conditioning (c: (N,) int labels or (N, K) soft labels):
- generator: class-conditional batch norm in every up block (Brock et al.
  2019; de Vries et al. 2017): BN without affine, then per-class gain
  (initialised at 1) and bias (at 0) picked by the label: one (K, C) table
  per BN layer;
- BigGAN's generator conditioning (Brock et al. 2019, Sec. 4 and appendix B,
  Fig. 15), options off by default:
  ``shared_dim: d`` (> 0) replaces the per-layer tables by one *shared* class
  embedding e = y E (E a (K, d) parameter, the only class-indexed weight of G);
  ``hier: true`` splits z into n + 1 equal chunks (n = number of up blocks;
  z_dim must divide): chunk 0 feeds the linear layer to 4x4, chunk i feeds
  up block i. Either option turns every up block's BNs into *linear*
  conditional BNs on the block's vector s_i = [z_i, e] (only the parts that
  are on; the one-hot label stands in for e when shared_dim is 0):
  gain = 1 + W_g s_i, bias = W_b s_i, a bias-free linear map per BN layer
  (spectrally normalised with the rest of G). E is a bare parameter, not a
  Linear, so orthogonal regularisation leaves it out, as in BigGAN;
- critic: projection (Miyato & Koyama 2018), D(x, y) = psi(phi(x)) + <V y, phi(x)>.

Critic contract (as for dcgan): ``features(x, c)`` is the pooled last hidden
layer (N, F); ``head(h, c)`` maps it to the (N, k) scores, and
``forward(x, c) == head(features(x, c), c)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import ConfigError
from ganforge.nets.common import ProjectionHead, maybe_sn, numel, one_hot, square_side
from ganforge.registry import NETS


def plan(shape: tuple[int, ...]) -> int:
    """Number of x2 upsamplings from 4x4 to the image (C, H, W); H == W must be a power of two >= 16."""
    return int(math.log2(square_side(shape, "resnet"))) - 2


def _width(ch: int, halvings: int, max_channels: int) -> int:
    return min(ch * 2 ** halvings, max_channels)


def _conv(cin: int, cout: int, k: int, sn: bool, gain: float = math.sqrt(2)) -> nn.Module:
    conv = nn.Conv2d(cin, cout, k, padding=k // 2)
    nn.init.xavier_uniform_(conv.weight, gain)
    nn.init.zeros_(conv.bias)
    return maybe_sn(conv, sn)  # SN after init: its power-iteration vectors start from the final weight


def _linear(cin: int, cout: int, sn: bool, bias: bool = True) -> nn.Module:
    lin = nn.Linear(cin, cout, bias=bias)
    nn.init.xavier_uniform_(lin.weight)
    if bias:
        nn.init.zeros_(lin.bias)
    return maybe_sn(lin, sn)


class ConditionalBatchNorm2d(nn.Module):
    """BN without affine, then gamma(y) * x_hat + beta(y): one gain and bias row per class.

    gain (K, C) starts at 1, bias (K, C) at 0; soft labels (N, K) mix the rows.
    """

    def __init__(self, channels: int, n_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Parameter(torch.ones(n_classes, channels))
        self.bias = nn.Parameter(torch.zeros(n_classes, channels))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x (N, C, H, W), y (N, K) one-hot or soft labels."""
        y = y.to(x.dtype)
        return (y @ self.gain)[:, :, None, None] * self.bn(x) + (y @ self.bias)[:, :, None, None]


class LinearConditionalBatchNorm2d(nn.Module):
    """BN without affine, then (1 + W_g s) * x_hat + W_b s for a conditioning vector s (N, d) (BigGAN).

    W_g, W_b: bias-free linear maps d -> C (spectrally normalised when ``sn``); s = [z_i, e] in BigGAN.
    """

    def __init__(self, channels: int, cond_dim: int, sn: bool) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = _linear(cond_dim, channels, sn, bias=False)
        self.bias = _linear(cond_dim, channels, sn, bias=False)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """x (N, C, H, W), s (N, d)."""
        s = s.to(x.dtype)
        return (1 + self.gain(s))[:, :, None, None] * self.bn(x) + self.bias(s)[:, :, None, None]


class SelfAttention(nn.Module):
    """SAGAN's attention block (Zhang et al. 2019, eqs. 1-3): y = x + gamma * v(sum_i beta_ji h(x_i)).

    f, g: 1x1 convs to C/8 channels, beta = softmax over positions i of f(x_i)^T g(x_j);
    h: 1x1 conv to C/2, v: 1x1 back to C (the C/2 of the authors' later code); gamma starts at 0,
    so the block starts as the identity.
    """

    def __init__(self, channels: int, sn: bool) -> None:
        super().__init__()
        ck, cv = max(channels // 8, 1), max(channels // 2, 1)
        self.f = _conv(channels, ck, 1, sn, gain=1.0)
        self.g = _conv(channels, ck, 1, sn, gain=1.0)
        self.h = _conv(channels, cv, 1, sn, gain=1.0)
        self.v = _conv(cv, channels, 1, sn, gain=1.0)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, hh, ww = x.shape
        f, g, h = self.f(x).flatten(2), self.g(x).flatten(2), self.h(x).flatten(2)  # (N, C', HW)
        beta = torch.softmax(torch.bmm(f.transpose(1, 2), g), dim=1)  # (N, HW_i, HW_j), sums to 1 over i
        o = torch.bmm(h, beta).reshape(n, -1, hh, ww)  # o_j = sum_i beta_ij h(x_i)
        return x + self.gamma * self.v(o)


def _block_bn(channels: int, n_classes: int, cond_dim: int, sn: bool) -> nn.Module:
    if cond_dim:
        return LinearConditionalBatchNorm2d(channels, cond_dim, sn)
    return ConditionalBatchNorm2d(channels, n_classes) if n_classes else nn.BatchNorm2d(channels)


class UpBlock(nn.Module):
    """BN, ReLU, upsample, conv3x3, BN, ReLU, conv3x3 + (upsample, conv1x1).

    BN: plain (K = 0, cond_dim = 0), a per-class table (K > 0), or linear in a cond_dim vector (BigGAN).
    """

    def __init__(self, cin: int, cout: int, n_classes: int, sn: bool, cond_dim: int = 0) -> None:
        super().__init__()
        self.bn1 = _block_bn(cin, n_classes, cond_dim, sn)
        self.bn2 = _block_bn(cout, n_classes, cond_dim, sn)
        self.conv1, self.conv2 = _conv(cin, cout, 3, sn), _conv(cout, cout, 3, sn)
        self.shortcut = _conv(cin, cout, 1, sn, gain=1.0)

    def _bn(self, bn: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return bn(x, y) if y is not None else bn(x)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = F.interpolate(F.relu(self._bn(self.bn1, x, y)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self._bn(self.bn2, self.conv1(h), y)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DownBlock(nn.Module):
    """Critic block. optimized (the first): conv, ReLU, conv, pool + (pool, conv1x1);
    else ReLU, conv, ReLU, conv, [pool] + ([conv1x1], [pool]); the 1x1 shortcut only when it is needed."""

    def __init__(self, cin: int, cout: int, sn: bool, *, down: bool = True, optimized: bool = False) -> None:
        super().__init__()
        self.down, self.optimized = down, optimized
        self.conv1, self.conv2 = _conv(cin, cout, 3, sn), _conv(cout, cout, 3, sn)
        self.shortcut = _conv(cin, cout, 1, sn, gain=1.0) if (optimized or down or cin != cout) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x if self.optimized else F.relu(x))
        h = self.conv2(F.relu(h))
        s = x
        if self.optimized:  # pool before the 1x1 conv: the same map at a quarter of the cost
            s = self.shortcut(F.avg_pool2d(s, 2))
        else:
            s = self.shortcut(s) if self.shortcut is not None else s
            s = F.avg_pool2d(s, 2) if self.down else s
        return (F.avg_pool2d(h, 2) if self.down else h) + s


def _attention_at(attention: int, valid: list[int], role: str) -> int:
    if attention and attention not in valid:
        raise ConfigError(f"resnet {role} attention must be 0 (none) or a feature-map size of this net, one of "
                          f"{', '.join(map(str, valid))}; got {attention}")
    return attention


def _biggan_checks(z_dim: int, n: int, n_classes: int, shared_dim: int, hier: bool) -> None:
    if not isinstance(shared_dim, int) or shared_dim < 0:
        raise ConfigError(f"resnet shared_dim must be an int >= 0 (0 = a gain/bias table per BN layer), "
                          f"got {shared_dim!r}")
    if shared_dim and not n_classes:
        raise ConfigError("resnet shared_dim (BigGAN's shared class embedding) needs class labels: use a "
                          "conditional game (game.conditional: true) or set shared_dim: 0")
    if hier and z_dim % (n + 1):
        raise ConfigError(f"resnet hier splits z into {n + 1} equal chunks (one for the 4x4 linear layer, one per "
                          f"up block), so z_dim must be a multiple of {n + 1}; got {z_dim}. Try z_dim: "
                          f"{(z_dim // (n + 1) or 1) * (n + 1)}")


class ResNetGenerator(nn.Module):
    """z (N, z_dim) [, c] -> images (N, C, H, W) in [-1, 1]."""

    def __init__(self, *, in_shape, out_shape, n_classes: int = 0, ch: int = 64, max_channels: int = 512,
                 spectral_norm: bool = False, attention: int = 0, shared_dim: int = 0, hier: bool = False) -> None:
        super().__init__()
        self.in_shape, self.out_shape, self.n_classes = tuple(in_shape), tuple(out_shape), n_classes
        n = plan(self.out_shape)
        z_dim = numel(in_shape)
        _biggan_checks(z_dim, n, n_classes, shared_dim, hier)
        widths = [_width(ch, n - i, max_channels) for i in range(n + 1)]  # the 4x4 map, then each block's output
        self.attention = _attention_at(attention, [4 * 2 ** (i + 1) for i in range(n)], "generator")
        self.c0 = widths[0]
        self.chunk = z_dim // (n + 1) if hier else 0  # hierarchical z: chunk 0 -> linear, chunk i -> block i
        # BigGAN's shared embedding: one (K, d) parameter for every BN; not a Linear, so orthogonal reg skips it.
        self.shared = nn.Parameter(torch.randn(n_classes, shared_dim)) if shared_dim else None
        label_dim = shared_dim or (n_classes if hier else 0)
        cond_dim = self.chunk + label_dim if (hier or shared_dim) else 0
        self.linear = _linear(self.chunk or z_dim, widths[0] * 16, spectral_norm)
        self.blocks = nn.ModuleList(UpBlock(a, b, n_classes, spectral_norm, cond_dim)
                                    for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.attn = SelfAttention(widths[int(math.log2(attention)) - 2], spectral_norm) if attention else None
        self.bn = nn.BatchNorm2d(widths[-1])
        self.out = _conv(widths[-1], self.out_shape[0], 3, spectral_norm, gain=1.0)

    def block_inputs(self, z: torch.Tensor, c: torch.Tensor | None = None):
        """(input of the linear layer, [what each up block's BNs are conditioned on]): z and the one-hot labels
        (or None) by default; with BigGAN's options z's chunk 0 and, per block i, s_i = [z_i, e]."""
        z = z.reshape(z.shape[0], -1)
        y = one_hot(c, self.n_classes, z.shape[0], z.device)
        if self.shared is None and not self.chunk:
            return z, [y] * len(self.blocks)
        e = y @ self.shared.to(z.dtype) if self.shared is not None else y  # (N, d): the shared embedding
        chunks = z.split(self.chunk, dim=1) if self.chunk else [z] + [None] * len(self.blocks)
        return chunks[0], [torch.cat([t for t in (zi, e) if t is not None], dim=1) for zi in chunks[1:]]

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        z0, conds = self.block_inputs(z, c)
        h = self.linear(z0).reshape(z.shape[0], self.c0, 4, 4)
        for block, y in zip(self.blocks, conds, strict=True):
            h = block(h, y)
            if self.attn is not None and h.shape[-1] == self.attention:
                h = self.attn(h)
        return torch.tanh(self.out(F.relu(self.bn(h))))


class ResNetDiscriminator(ProjectionHead, nn.Module):
    """images (N, C, H, W) [, c] -> scores (N, k); ``features``/``head`` split off the output layer."""

    def __init__(self, *, in_shape, out_shape, n_classes: int = 0, ch: int = 64, max_channels: int = 512,
                 spectral_norm: bool = True, attention: int = 0, extra_blocks: int = 2) -> None:
        super().__init__()
        if extra_blocks < 0:
            raise ConfigError(f"resnet extra_blocks must be >= 0, got {extra_blocks}")
        self.in_shape, self.out_shape, self.n_classes = tuple(in_shape), tuple(out_shape), n_classes
        n_down = plan(self.in_shape) - 1  # down to 8x8
        sizes = [self.in_shape[1] // 2 ** (i + 1) for i in range(n_down)]
        self.attention = _attention_at(attention, sizes, "critic")
        blocks, cin = [], self.in_shape[0]
        for i in range(n_down):
            cout = _width(ch, i, max_channels)
            blocks.append(DownBlock(cin, cout, spectral_norm, optimized=i == 0))
            if attention == sizes[i]:
                blocks.append(SelfAttention(cout, spectral_norm))
            cin = cout
        blocks += [DownBlock(cin, cin, spectral_norm, down=False) for _ in range(extra_blocks)]
        self.blocks = nn.Sequential(*blocks)
        self.n_features = cin
        k = numel(self.out_shape)
        self.out = _linear(cin, k, spectral_norm)
        self.project = _linear(n_classes, cin * k, spectral_norm, bias=False) if n_classes else None

    def features(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """ReLU then global sum pooling of the last block: (N, F)."""
        return F.relu(self.blocks(x)).sum(dim=(2, 3))



def resnet(*, in_shape, out_shape, n_classes: int = 0, ch: int = 64, max_channels: int = 512,
           spectral_norm: bool | None = None, attention: int = 0, extra_blocks: int = 2, shared_dim: int = 0,
           hier: bool = False) -> nn.Module:
    """ResNet net (SNGAN): (z_dim,) -> image builds the generator; image -> (k,) builds the critic.

    ch: channels at G's full-resolution block and D's first block, doubling per halving, capped at
    max_channels; spectral_norm: default on for the critic, off for the generator; attention: the
    feature-map size of a SAGAN self-attention block (0 = none); extra_blocks: critic blocks at 8x8
    without downsampling (2 in SNGAN). Generator only (BigGAN, Brock et al. 2019): shared_dim, the size
    of one class embedding shared by every conditional BN (0 = a table per layer; 128 in BigGAN); hier,
    z split into one chunk per up block (plus one for the first layer), each block's BN conditioned on
    [z_i, embedding].
    """
    in_shape, out_shape = tuple(in_shape), tuple(out_shape)
    if ch < 1 or max_channels < 1:
        raise ConfigError(f"resnet needs ch >= 1 and max_channels >= 1, got {ch}, {max_channels}")
    if len(in_shape) == 1 and len(out_shape) == 3:
        return ResNetGenerator(in_shape=in_shape, out_shape=out_shape, n_classes=n_classes, ch=ch,
                               max_channels=max_channels, spectral_norm=bool(spectral_norm), attention=attention,
                               shared_dim=shared_dim, hier=bool(hier))
    if shared_dim or hier:
        raise ConfigError("resnet shared_dim and hier are generator options (BigGAN's G conditioning); the critic "
                          "is conditioned by projection: drop them from nets.d")
    if len(in_shape) == 3:
        return ResNetDiscriminator(in_shape=in_shape, out_shape=out_shape, n_classes=n_classes, ch=ch,
                                   max_channels=max_channels, spectral_norm=spectral_norm is not False,
                                   attention=attention, extra_blocks=extra_blocks)
    raise ConfigError(f"resnet maps a latent vector to an image (generator) or an image to scores (critic); "
                      f"got in_shape {in_shape} -> out_shape {out_shape}")


NETS.add("resnet", resnet, help="ResNet G/D of SNGAN (Miyato et al. 2018): ch, max_channels, spectral_norm, "
                                "attention (SAGAN), class-conditional BN + projection, BigGAN's shared_dim "
                                "and hier")
