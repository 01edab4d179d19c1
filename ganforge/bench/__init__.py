"""Benchmarks (not tests): `ganforge bench NAME [--quick] [--out FILE]`, each writing JSON + a markdown table."""

from ganforge.bench import (  # noqa: F401
    faults,  # noqa: F401  (issue 8: fault drill)
    games_beyond,  # noqa: F401  (issue 7: cgan, ssgan, bigan, dann, adda)
    metrics_bench,
    overhead,
    speed,  # noqa: F401  (issue 8: DCGAN images/s with bf16, channels_last, compile)
    toy_modes,
    translation,  # noqa: F401  (issue 7: cyclegan, stargan, srgan)
    unrolled,  # noqa: F401  (issue 4: plain vs unrolled GAN)
)
