"""Regenerate examples/galaxy.fits, the mock that the README's quick start fits.

    python examples/make_example.py

simulator.EXAMPLE_GALAXY on the default HR grid (80 x 80 at 0.5", z = 0.03), noise of S/N 30 with seed 1 and the
default MaNGA-like floors and S/N ceiling (galsr.noise). Equivalent CLI: galsr mock --seed 1 --snr 30 --param NAME=VALUE (all 18) --out examples/galaxy.fits
"""
import os

from galsr.galaxy import write_galaxy
from galsr.mock import example_parameters, make_mock

if __name__ == "__main__":
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "galaxy.fits")
    galaxy = make_mock(example_parameters(), seed=1, snr=30.0, object_name="galsr example (mock, S/N 30, MaNGA-like floors)")
    write_galaxy(out, galaxy, overwrite=True)
    print(f"wrote {out}")
