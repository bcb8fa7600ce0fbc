"""galsr: fast galaxy photometry + kinematics maps by super-resolving a coarse simulation with iSRCNN.

Public API (imported lazily, so ``import galsr`` stays light):
    Emulator                      parameters -> HR maps (the shipped default: ``Emulator.default()``)
    ForwardModel, EmulatorForward, SimulatorForward
                                  one interface, two forward models for fits and benchmarks
    Galaxy, read_galaxy, write_galaxy, make_mock
                                  integral-field data in FITS (design.md "Galaxy input FITS")
    fit                           dynesty nested sampling of the 18 parameters
    benchmark_emulator            speed-up and accuracy of an emulator against the converged simulation
"""
__version__ = "0.1.0"

_LAZY = {
    "Emulator": "galsr.emulator",
    "ForwardModel": "galsr.forward", "EmulatorForward": "galsr.forward", "SimulatorForward": "galsr.forward",
    "Galaxy": "galsr.galaxy_io", "read_galaxy": "galsr.galaxy_io", "write_galaxy": "galsr.galaxy_io",
    "make_mock": "galsr.mock",
    "fit": "galsr.fit",
    "benchmark_emulator": "galsr.benchmark",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name])
        if name == "fit":  # the function, not the module of the same name
            return module.fit
        return getattr(module, name)
    raise AttributeError(f"module 'galsr' has no attribute {name!r}")
