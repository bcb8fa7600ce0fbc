"""Timing helpers for the benchmark scripts: medians of repeated runs, thread control, machine facts."""
import os
import platform



def machine_line():
    """One line describing the machine the numbers come from."""
    import numba
    import torch

    return (f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python "
            f"{platform.python_version()}, numba {numba.__version__}, torch {torch.__version__}")


def set_threads(n):
    """Set numba and torch intra-op threads to ``n``."""
    import numba
    import torch

    numba.set_num_threads(n)
    torch.set_num_threads(n)
