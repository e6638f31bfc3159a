"""Source models: the variable point source of each class, and the host galaxy it sits in.

Every source has ``subtype``, ``host`` (a HostGalaxy or None) and ``flux(mjd, band_index,
band_names)``, the point source's flux in nanomaggies at observer-frame MJDs, each through
the band ``band_names[band_index]``.
"""

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from convention.sim.sources.agn import AGN
from convention.sim.sources.core_collapse import CoreCollapseSN
from convention.sim.sources.host import HostGalaxy
from convention.sim.sources.snia import SNIa
from convention.sim.sources.variable_stars import VariableStar


class Source(Protocol):
    """What the renderer reads of a source model."""

    subtype: str
    host: HostGalaxy | None

    def flux(
        self, mjd: np.ndarray, band_index: np.ndarray, band_names: Sequence[str]
    ) -> np.ndarray:
        """(N,) point-source flux in nanomaggies at ``mjd`` through ``band_names[band_index]``."""
        ...


__all__ = ["AGN", "CoreCollapseSN", "HostGalaxy", "SNIa", "Source", "VariableStar"]
