"""The emulator's runtime: everything a pipeline needs to turn parameters into HR maps, and nothing of training.

Layers (each imports only from those above it in this list):
    galsr.simulator                   physics, grids, parameter space, datasets, atomic file writes
    galsr.emulator                    architectures, inference rewrite, map transform, emulator file, latency, Emulator
    galsr.training, galsr fit modules training loop and evaluation; likelihood, sampler, outputs
    galsr.training.tuning             BOHB tuning
    galsr.cli, galsr.commands         the command line
"""
from galsr.emulator.emulator import Emulator, default_path

__all__ = ["Emulator", "default_path"]
