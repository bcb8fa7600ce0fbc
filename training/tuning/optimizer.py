"""hpbandster's optimiser (the master): the budget ladder, BOHB / random search that time out instead of waiting
forever, and running it while watching the workers.

Budgets are training epochs. The master gives up with TimeoutError when fewer than the required workers register
within ``worker_timeout`` seconds, or when every worker has been gone that long mid-run.
"""
import contextlib
import threading
import time
import warnings

import numpy as np

#: Optimisers: "bohb" (the thesis) and "random" (hpbandster's random search at the max budget, for benchmarks).
OPTIMIZERS = ("bohb", "random")


def bohb_budgets(min_budget, max_budget, eta):
    """hpbandster's geometric budget ladder [epochs] (array of floats, ascending), as BOHB computes it."""
    n = -int(np.log(min_budget / max_budget) / np.log(eta)) + 1
    return max_budget * np.power(float(eta), -np.linspace(n - 1, 0, n))


def planned_evaluations(n_iterations, min_budget, max_budget, eta, optimizer="bohb"):
    """Number of evaluations (config x budget) that ``n_iterations`` of BOHB/random search will run (int)."""
    n_rungs = len(bohb_budgets(min_budget, max_budget, eta))
    if optimizer == "random":
        budgets = bohb_budgets(min_budget, max_budget, eta)
        per_it = sum(b * eta ** i for i, b in enumerate(budgets[::-1]))
        return int(n_iterations * (per_it // max_budget))
    total = 0
    for it in range(n_iterations):
        s = n_rungs - 1 - (it % n_rungs)
        n0 = int(np.floor(n_rungs / (s + 1)) * eta ** s)
        total += sum(max(int(n0 * eta ** (-i)), 1) for i in range(s + 1))
    return total


@contextlib.contextmanager
def quiet_deprecations():
    """Silence, while the block runs, the DeprecationWarnings hpbandster 0.7.4 triggers on every sample (it calls
    ConfigSpace 1.x APIs that warn of their deprecation) and Pyro4's (``Event.isSet``)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="hpbandster")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="Pyro4")
        yield


def _optimizer_class(kind):
    """BOHB or RandomSearch with a ``wait_for_workers`` that times out instead of waiting forever."""
    from hpbandster.optimizers import BOHB, RandomSearch

    base = BOHB if kind == "bohb" else RandomSearch

    class TimedOptimizer(base):
        worker_timeout = 60.0
        local_processes = ()

        def wait_for_workers(self, min_n_workers=1):
            deadline = time.monotonic() + self.worker_timeout
            with self.thread_cond:
                while self.dispatcher.number_of_workers() < min_n_workers:
                    dead = [p for p in self.local_processes if p.exitcode is not None]
                    if self.local_processes and len(dead) == len(self.local_processes):
                        raise RuntimeError("every local tune worker exited before the run started (exit codes "
                                           f"{[p.exitcode for p in dead]}); see their messages above")
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"only {self.dispatcher.number_of_workers()} of {min_n_workers} tune "
                                           f"worker(s) registered within {self.worker_timeout:g} s")
                    self.thread_cond.wait(0.5)
                    self.dispatcher.trigger_discover_worker()

    TimedOptimizer.__name__ = f"Timed{base.__name__}"
    return TimedOptimizer


def make_optimizer(kind, worker_timeout, local_processes=(), **kwargs):
    """The hpbandster master of ``kind`` ("bohb" or "random") that gives up waiting for workers.

    Args:
        kind: one of :data:`OPTIMIZERS`.
        worker_timeout: float [s], how long to wait for workers to register.
        local_processes: multiprocessing.Process sequence of the local workers (all exited: RuntimeError at once).
        **kwargs: hpbandster optimizer arguments (configspace, run_id, eta, min_budget, max_budget, nameserver, ...).
    """
    master = _optimizer_class(kind)(**kwargs)
    master.worker_timeout, master.local_processes = float(worker_timeout), tuple(local_processes)
    return master


def run_optimizer(master, n_iterations, min_n_workers, local_procs, worker_timeout):
    """Run ``master.run`` in a thread (returns its hpbandster Result); TimeoutError if every worker (joined or in
    ``local_procs``) is gone for ``worker_timeout`` [s] mid-run."""
    box = {}

    def target():
        try:
            box["result"] = master.run(n_iterations=n_iterations, min_n_workers=min_n_workers)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="galsr-tune-master", daemon=True)
    thread.start()
    gone_since = None
    while thread.is_alive():
        thread.join(1.0)
        alive_local = [p for p in local_procs if p.exitcode is None]
        if master.dispatcher.number_of_workers() == 0 and not alive_local and "started" in box:
            gone_since = gone_since or time.monotonic()
            if time.monotonic() - gone_since > worker_timeout:
                raise TimeoutError(f"no tune worker left for {worker_timeout:g} s (local exit codes "
                                   f"{[p.exitcode for p in local_procs]}); aborting the run")
        else:
            gone_since = None
        if master.dispatcher.number_of_workers() > 0:
            box["started"] = True
    if "error" in box:
        raise box["error"]
    return box["result"]
