"""PyTorch references: the metaplastic BNN, its optimizer and baselines."""

from lavaplast.reference.binary import BinaryLinear, SignActivation, sign_ste
from lavaplast.reference.ewc import EWC
from lavaplast.reference.local_bnn import LocalBinaryMLP, LocalMLPState, init_local_mlp, state_from_bnn
from lavaplast.reference.models import (
    BNN,
    MLP,
    FullPrecisionMLP,
    batchnorm_state,
    load_batchnorm_state,
)
from lavaplast.reference.optim import MetaplasticAdam
from lavaplast.reference.spiking import SpikingBinaryMLP, rate_encode
from lavaplast.reference.spiking_bptt import SpikingBPTT, train_bptt
from lavaplast.reference.spiking_learner import SpikingLearnerState, SpikingLearnerTwin, init_spiking_learner

__all__ = [
    "BNN",
    "EWC",
    "MLP",
    "BinaryLinear",
    "FullPrecisionMLP",
    "LocalBinaryMLP",
    "LocalMLPState",
    "MetaplasticAdam",
    "SignActivation",
    "SpikingBinaryMLP",
    "SpikingBPTT",
    "SpikingLearnerState",
    "SpikingLearnerTwin",
    "batchnorm_state",
    "init_local_mlp",
    "init_spiking_learner",
    "load_batchnorm_state",
    "rate_encode",
    "sign_ste",
    "state_from_bnn",
    "train_bptt",
]
