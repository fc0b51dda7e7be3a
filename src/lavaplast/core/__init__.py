"""Backend-free math shared by the Lava process models and the references.

Plain functions on numpy arrays or torch tensors (via ``array_api_compat``).
"""

from lavaplast.core.metaplastic import (
    adam_direction,
    adam_moments_,
    check_meta,
    f_meta,
    metaplastic_adam_step_,
    metaplastic_sgd_step_,
    metaplastic_update,
    metaplastic_update_,
)
from lavaplast.core.ep import (
    NUDGING,
    check_beta,
    check_layers,
    check_steps,
    drives,
    ep_bias_contrast,
    ep_phase,
    ep_step,
    ep_update,
    ep_weight_contrast,
    ep_window,
    free_phase,
    hard_sigmoid,
    input_drive,
    nudged_phase,
    phi,
)
from lavaplast.core.fixed_point import (
    f_meta_lut,
    from_fixed,
    metaplastic_update_fixed_,
    round_shift,
    to_fixed,
)
from lavaplast.core.local_learning import (
    LOSSES,
    feedback_error,
    local_gradient,
    neuron_drive,
    output_error,
    sign_neuron,
)
from lavaplast.core.quantize import binarize, ternarize
from lavaplast.core.sigma_delta import sigma_delta_encode

__all__ = [
    "NUDGING",
    "check_beta",
    "check_layers",
    "check_steps",
    "drives",
    "ep_bias_contrast",
    "ep_phase",
    "ep_step",
    "ep_update",
    "ep_weight_contrast",
    "ep_window",
    "free_phase",
    "hard_sigmoid",
    "input_drive",
    "nudged_phase",
    "phi",
    "LOSSES",
    "f_meta_lut",
    "feedback_error",
    "from_fixed",
    "local_gradient",
    "neuron_drive",
    "output_error",
    "round_shift",
    "sigma_delta_encode",
    "sign_neuron",
    "adam_direction",
    "adam_moments_",
    "binarize",
    "check_meta",
    "f_meta",
    "metaplastic_adam_step_",
    "metaplastic_sgd_step_",
    "metaplastic_update",
    "metaplastic_update_",
    "metaplastic_update_fixed_",
    "ternarize",
    "to_fixed",
]
