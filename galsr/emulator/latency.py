"""The one latency measure of galsr: the median wall time of repeated calls after warm-up calls.

Everything that reports a latency (``galsr bench``, ``galsr evaluate``, the tuning objective, the fit's run record,
the benchmark scripts) times through these functions, so their numbers mean the same thing: the median [ms] of
per-call times, which ignores the occasional call that another process slowed down.
"""
import time
from contextlib import contextmanager

import numpy as np


def call_times(fn, repeats=50, warmup=5):
    """Per-call wall times [s] (array (repeats,)) of ``fn()`` after ``warmup`` untimed calls."""
    for _ in range(int(warmup)):
        fn()
    times = np.empty(int(repeats))
    for i in range(int(repeats)):
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    return times


def latency_ms(fn, repeats=50, warmup=5):
    """Median wall time [ms] of ``fn()`` (float): the statistic every galsr latency reports."""
    return float(np.median(call_times(fn, repeats, warmup)) * 1e3)


def paired_call_times(fns, items, repeats=3, warmup_items=2):
    """Side-by-side per-call wall times [s] of several functions on the same items: within a repeat each function
    runs over all items back to back (as in a fit, where one model is called again and again), and the functions
    alternate from repeat to repeat, so that all see the same machine load. Returns (len(fns), repeats * len(items)).
    Summarise with the median, as :func:`latency_ms` does."""
    for item in items[:warmup_items]:  # numba compilation, torch allocations
        for fn in fns:
            fn(item)
    times = [[] for _ in fns]
    for _ in range(int(repeats)):
        for k, fn in enumerate(fns):
            for item in items:
                t0 = time.perf_counter()
                fn(item)
                times[k].append(time.perf_counter() - t0)
    return np.array(times)


@contextmanager
def torch_threads(n):
    """Run a block with ``n`` torch intra-op threads, restoring the previous count afterwards."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def network_latency_ms(model, input_shape, threads=1, repeats=50, warmup=5):
    """Latency [ms] of ``model(x)`` (a torch module, e.g. the inference copy the Emulator runs) on a random input of
    ``input_shape`` (e.g. (1, 4, 20, 20) for one galaxy) with ``threads`` torch threads."""
    import torch

    x = torch.rand(*input_shape, generator=torch.Generator().manual_seed(0))
    with torch_threads(threads), torch.inference_mode():
        model.eval()
        return latency_ms(lambda: model(x), repeats=repeats, warmup=min(int(warmup), int(repeats)))
