"""PyTorch references: the metaplastic BNN, its optimizer and baselines."""

from lavaplast.reference.binary import BinaryLinear, SignActivation, sign_ste
from lavaplast.reference.ewc import EWC
from lavaplast.reference.models import (
    BNN,
    MLP,
    FullPrecisionMLP,
    batchnorm_state,
    load_batchnorm_state,
)
from lavaplast.reference.optim import MetaplasticAdam

__all__ = [
    "BNN",
    "EWC",
    "MLP",
    "BinaryLinear",
    "FullPrecisionMLP",
    "MetaplasticAdam",
    "SignActivation",
    "batchnorm_state",
    "load_batchnorm_state",
    "sign_ste",
]
