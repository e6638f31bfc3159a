"""The survey simulator: survey definitions (``survey``), cadence, source models, the
GalSim renderer, and the whole run (``simulate``: :class:`SimulationSettings`,
``simulate``, ``simulate_series``).

The package itself imports nothing: the alert readers take the survey definitions from
here without the simulator's source models (sncosmo and GalSim, most of a second).
"""
