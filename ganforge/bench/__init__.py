"""Benchmarks (not tests): `ganforge bench NAME [--quick] [--out FILE]`, each writing JSON + a markdown table."""

from ganforge.bench import metrics_bench, toy_modes  # noqa: F401
