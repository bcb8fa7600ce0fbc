"""galsr: fast galaxy photometry + kinematics maps by super-resolving a coarse simulation with iSRCNN.

Public API (imported lazily, so ``import galsr`` stays light):
    Emulator                      parameters -> HR maps (the shipped default: ``Emulator.default()``)
    ForwardModel, EmulatorForward, SimulatorForward
                                  one interface, two forward models for fits and benchmarks
    Galaxy, read_galaxy, write_galaxy, make_mock
                                  integral-field data in FITS (README "Fitting a galaxy")
    fit                           dynesty nested sampling of the 18 parameters
    benchmark_emulator            speed-up and accuracy of an emulator against the converged simulation
"""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("galsr")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

_LAZY = {
    "Emulator": "galsr.emulator",
    "simulate": "galsr.simulator",
    "ForwardModel": "galsr.forward_models", "EmulatorForward": "galsr.forward_models",
    "SimulatorForward": "galsr.forward_models",
    "Galaxy": "galsr.galaxy", "read_galaxy": "galsr.galaxy", "write_galaxy": "galsr.galaxy",
    "make_mock": "galsr.mock",
    "fit": "galsr.fitting",
    "benchmark_emulator": "galsr.benchmark",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'galsr' has no attribute {name!r}")
