"""Refit the per-class distributions shipped in src/convention/sim/data from the SDSS-II
candidate catalog (the catalog itself is not shipped).

    python scripts/fit_sdss2_distributions.py \
        ../shared/data/sdss2-candidates/SDSS2_DS17_HEAD.FITS.gz
"""

import json
import sys
from pathlib import Path

from convention.sim.catalog import DISTRIBUTIONS_FILE, fit_distributions, read_sdss2_catalog

if __name__ == "__main__":
    fitted = fit_distributions(read_sdss2_catalog(sys.argv[1]))
    fitted["source"] = f"fit_distributions({Path(sys.argv[1]).name})"
    out = Path(__file__).parents[1] / "src" / "convention" / "sim" / "data" / DISTRIBUTIONS_FILE
    out.write_text(json.dumps(fitted, indent=1) + "\n")
    print(f"wrote {out}")
