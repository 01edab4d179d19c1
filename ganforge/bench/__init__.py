"""Benchmarks (not tests): `ganforge bench NAME [--quick] [--out FILE]`, each writing JSON + a markdown table."""

from ganforge.bench import metrics_bench, overhead, toy_modes  # noqa: F401
from ganforge.bench import faults  # noqa: F401  (issue 8: fault drill)
from ganforge.bench import translation  # noqa: F401  (issue 7: cyclegan, stargan, srgan)
from ganforge.bench import games_beyond  # noqa: F401  (issue 7: cgan, ssgan, bigan, dann, adda)
from ganforge.bench import speed  # noqa: F401  (issue 8: DCGAN images/s with bf16, channels_last, compile)
from ganforge.bench import unrolled  # noqa: F401  (issue 4: plain vs unrolled GAN)
