"""ganforge: train, evaluate and understand generative adversarial networks.

Nothing heavy happens at import; the API functions import what they need.
"""

__version__ = "0.1.0"


def train(*args, **kwargs):
    from ganforge.api import train as _train

    return _train(*args, **kwargs)


def sample(*args, **kwargs):
    from ganforge.api import sample as _sample

    return _sample(*args, **kwargs)


def load_game(*args, **kwargs):
    from ganforge.api import load_game as _load

    return _load(*args, **kwargs)


def load(*args, **kwargs):
    """A trained generator from an export folder, run directory or checkpoint (see ``ganforge.export``)."""
    from ganforge.export import load as _load

    return _load(*args, **kwargs)


__all__ = ["__version__", "train", "sample", "load_game", "load"]
