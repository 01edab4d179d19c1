"""Network families, each registered by name; factories take in_shape, out_shape, n_classes."""

from ganforge.nets import dcgan, encoders, mlp, pix2pix, progressive, resnet, stylegan, translation, wn_mlp  # noqa: F401  (register)
from ganforge.nets.common import PROVIDED
from ganforge.registry import NETS


def build_net(name: str, *, in_shape, out_shape, n_classes: int = 0, **params):
    """Build net ``name`` mapping in_shape -> out_shape; ``params`` are the user's config."""
    from ganforge.registry import check_params

    factory = NETS.get(name)
    for key in PROVIDED:
        if key in params:
            from ganforge.errors import ConfigError

            raise ConfigError(f"net parameter {key!r} is set by the game, not the config")
    check_params(factory, params, where=f"net {name!r}")
    from ganforge.stabilisers.vbn import attach_reference

    net = factory(in_shape=tuple(in_shape), out_shape=tuple(out_shape), n_classes=n_classes, **params)
    return attach_reference(net)  # nets with norm: vbn get their reference batch and its forward hook


__all__ = ["build_net", "NETS", "PROVIDED"]
