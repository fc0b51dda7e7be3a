"""Builders that assemble lavaplast processes into runnable Lava graphs."""

from lavaplast.graph.binary_network import LavaBinaryMLP

__all__ = ["LavaBinaryMLP"]
