"""Builders that assemble lavaplast processes into runnable Lava graphs."""

from lavaplast.graph.binary_network import LavaBinaryMLP
from lavaplast.graph.ep_network import LavaEPNetwork
from lavaplast.graph.spiking import LavaSpikingBinaryMLP

__all__ = ["LavaBinaryMLP", "LavaEPNetwork", "LavaSpikingBinaryMLP"]
