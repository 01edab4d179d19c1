"""Theory lab (C7): exact divergences and the lectures' figures, one command each.

Importing this package registers every experiment in ``ganforge.registry.LABS``;
each is ``run(*, out, quick, seed=0) -> dict`` writing ``NAME.png`` and ``NAME.json``.
Heavy work (matplotlib, training) happens only inside ``run``.
"""

from ganforge.lab import (  # noqa: F401
    critics,
    dfeatures,
    divergences,
    dynamics,
    figures,
    gan_runs,
    gaussians,
    landscape,
    likelihood,
    modeseek,
    randomd,
    saturation,
    tablecheck,
    theory,
    transport,
)
