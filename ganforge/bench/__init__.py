"""Benchmarks (not tests): `ganforge bench NAME [--quick] [--out FILE]`, each writing JSON + a markdown table."""

from ganforge.bench import (  # noqa: F401
    cyclegan_bench,  # noqa: F401  (issue 13: the CycleGAN recipes over seeds)
    faults,  # noqa: F401  (issue 8: fault drill)
    gain_bench,  # noqa: F401  (issue 15: GAIN imputation vs mean and IterativeImputer)
    games_beyond,  # noqa: F401  (issue 7: cgan, ssgan, bigan, dann, adda)
    inpaint_bench,  # noqa: F401  (issue 15: inpainting by latent optimisation, projection check)
    metrics_bench,
    overhead,
    pix2pix_bench,  # noqa: F401  (issue 15: pix2pix loss ablation on paired Fashion-MNIST tasks)
    speed,  # noqa: F401  (issue 8: DCGAN images/s with bf16, channels_last, compile)
    stargan_bench,  # noqa: F401  (issue 13: the StarGAN recipe over seeds, beside a one-pair CycleGAN)
    toy_frontier,  # noqa: F401  (issue 14: ring/grid recipes vs PacGAN's table, CPU-seconds)
    toy_modes,
    translation,  # noqa: F401  (issue 7: srgan; helpers of the translation benchmarks)
    unrolled,  # noqa: F401  (issue 4: plain vs unrolled GAN)
)
