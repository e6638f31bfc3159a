"""The survey simulator: survey definitions, cadence, source models, GalSim renderer."""

from convention.sim.simulate import SimulationSettings, simulate, simulate_series

__all__ = ["SimulationSettings", "simulate", "simulate_series"]
