"""The lectures' GAN stabilisers (lecture 003, "GAN tricks"; Salimans et al. 2016; Goodfellow 2016).

Each piece is a small function or layer; the ``gan`` game switches them on by
config (``game.feature_matching``, ``game.unrolled_steps``, ``game.minibatch_disc``,
``game.instance_noise``, ``game.augment``), nets take ``norm: vbn``, and the
objectives own one-sided label smoothing (``objective.smoothing``). Spectral
normalisation is a net option (``spectral_norm: true``) and the EMA of G is
``train.ema``.
"""

from ganforge.stabilisers.augment import AUGMENTS, diff_augment, parse_policy
from ganforge.stabilisers.minibatch import MinibatchCritic, MinibatchDiscrimination, feature_matching_loss
from ganforge.stabilisers.noise import NOISE_SCHEDULES, add_instance_noise, instance_noise_sigma
from ganforge.stabilisers.unrolled import UNROLL_OPTIMIZERS, unroll
from ganforge.stabilisers.vbn import VirtualBatchNorm, attach_reference, has_vbn, reference_of, set_reference

__all__ = [
    "AUGMENTS", "diff_augment", "parse_policy",
    "MinibatchCritic", "MinibatchDiscrimination", "feature_matching_loss",
    "NOISE_SCHEDULES", "add_instance_noise", "instance_noise_sigma",
    "UNROLL_OPTIMIZERS", "unroll",
    "VirtualBatchNorm", "attach_reference", "has_vbn", "reference_of", "set_reference",
]
