"""lavaplast: metaplastic binary synapses and event-driven equilibrium
propagation on Intel Lava, each validated against a PyTorch reference."""

__version__ = "0.1.0"
