"""The settings of one tuning session (:class:`TuneSettings`), checked in one place."""
from dataclasses import dataclass

from galsr.training.tuning.objective import OBJECTIVES
from galsr.training.tuning.optimizer import OPTIMIZERS
from galsr.training.tuning.space import parse_groups


@dataclass(frozen=True)
class TuneSettings:
    """Everything :func:`galsr.training.tuning.driver.tune` needs besides the dataset and the tuning directory.

    Invalid values raise ValueError naming the setting (expected vs got) when the object is made.

    Search:
        n_iterations: int >= 1, BOHB iterations (successive-halving brackets) in this session.
        min_budget, max_budget: float [epochs], 0 < min <= max; budgets are max * eta**-k, rounded to whole epochs.
        eta: float >= 2, reduction factor (the thesis: 2).
        seed: int, seeds every training run, and BOHB's sampler and the search space (with ``seed + k`` in the
            k-th resumed session of a directory, so a resume does not redraw the same random configurations).
        optimizer: "bohb" or "random" (hpbandster's RandomSearch at max_budget; same logging and report).
        resume: bool, continue the tuning directory: warm-start BOHB from its results and append to them. The
            objective settings (groups, objective, base_config, latency_*) are the directory's: None inherits them,
            a different value raises ValueError.

    Objective (None: the defaults below, or the directory's on resume):
        objective: "l1" (validation L1) or "l1+latency" (see ``objective.objective_loss``) [l1].
        groups: "all", "local", "global" or a list, the searched hyperparameter groups (``space.GROUPS``); stored
            as a tuple of group names [all].
        base_config: dict, training config for everything not searched [the thesis values].
        latency_weight: float >= 0, exponent w of the soft latency penalty [0.5].
        latency_cap_ms: float [ms] or None, hard-ish latency cap (loss *= (lat/cap)**8 above it).
        latency_ref_ms: float [ms] or None, latency with penalty factor 1 [measured thesis iSRCNN].

    Training of each evaluation:
        max_train, max_val: int or None, cap on training / validation rows used per evaluation.
        latency_repeats: int >= 1, timed forward passes per latency measurement (median).
        num_threads: int >= 1 or None, torch threads per local worker for training.

    Workers and network:
        workers: int >= 0, local worker processes (0: only workers joining with ``galsr tune-worker``).
        min_workers: int >= 1 or None, workers (local + joined) to wait for before the first job [max(1, workers)].
        worker_timeout: float > 0 [s], how long to wait for workers to register / to come back before giving up.
        host: str, nameserver/dispatcher address (127.0.0.1 by default; a LAN address lets other machines join).
        port: int in 0..65535, nameserver port (0 = a free one).
        run_id: str or None, hpbandster run id [a fresh "galsr-xxxxxxxx"].

    Output:
        progress: bool, print one line per finished evaluation to stderr.
        report: bool, write the report files (``report.write_report``) at the end.
    """
    n_iterations: int = 4
    min_budget: float = 1
    max_budget: float = 4
    eta: float = 2
    seed: int = 0
    optimizer: str = "bohb"
    resume: bool = False
    objective: str | None = "l1"
    groups: tuple | str | None = "all"
    base_config: dict | None = None
    latency_weight: float | None = None
    latency_cap_ms: float | None = None
    latency_ref_ms: float | None = None
    max_train: int | None = None
    max_val: int | None = None
    latency_repeats: int = 30
    num_threads: int | None = 1
    workers: int = 1
    min_workers: int | None = None
    worker_timeout: float = 120.0
    host: str = "127.0.0.1"
    port: int = 0
    run_id: str | None = None
    progress: bool = True
    report: bool = True

    def __post_init__(self):
        if int(self.n_iterations) < 1:
            raise ValueError(f"n_iterations: expected >= 1, got {self.n_iterations}")
        if not self.min_budget > 0:
            raise ValueError(f"min_budget: expected > 0 epochs, got {self.min_budget}")
        if self.min_budget > self.max_budget:
            raise ValueError(f"min_budget ({self.min_budget}) > max_budget ({self.max_budget}): expected "
                             "min_budget <= max_budget")
        if not self.eta >= 2:
            raise ValueError(f"eta: expected >= 2 (hpbandster keeps 1/eta of the configs per rung), got {self.eta}")
        if int(self.workers) < 0 or int(self.workers) != self.workers:
            raise ValueError(f"workers: expected >= 0 local workers (0 = only remote tune-workers), got "
                             f"{self.workers}")
        if (self.objective or "l1") not in OBJECTIVES:
            raise ValueError(f"objective: expected one of {OBJECTIVES}, got {self.objective!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.min_workers is not None and int(self.min_workers) < 1:
            raise ValueError(f"min_workers: expected >= 1 (or None: max(1, workers)), got {self.min_workers}")
        if not self.worker_timeout > 0:
            raise ValueError(f"worker_timeout: expected > 0 seconds, got {self.worker_timeout}")
        if not 0 <= int(self.port) < 65536:
            raise ValueError(f"port: expected 0 (a free one) .. 65535, got {self.port}")
        if int(self.latency_repeats) < 1:
            raise ValueError(f"latency_repeats: expected >= 1, got {self.latency_repeats}")
        if self.num_threads is not None and int(self.num_threads) < 1:
            raise ValueError(f"num_threads: expected >= 1 (or None), got {self.num_threads}")
        if self.groups is not None:
            object.__setattr__(self, "groups", parse_groups(self.groups))

