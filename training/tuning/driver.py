"""BOHB tuning of iSRCNN with hpbandster (thesis chapter 5): nameserver, workers, result logging, warm start.

:func:`tune` runs hpbandster's BOHB (or its random search, for comparison) with budget = training epochs over the
thesis search space (``training.tune_space``). It starts a Pyro4 nameserver (127.0.0.1 and a free port unless a host
is given), publishes the run settings there, starts ``workers`` local worker processes (the same code as
``galsr tune-worker``, so machines that join with ``--nameserver HOST:PORT --run-id ID`` are equal citizens), logs
every result with hpbandster's json result logger into ``out_dir`` and finally writes the report
(``training.tune_report``). ``resume=True`` warm-starts BOHB's model from the results already in ``out_dir`` (via
``logged_results_to_HBS_result`` and hpbandster's ``previous_result``) and appends the new results to the same files,
with iteration numbers continued so config ids never collide.

Nothing waits forever: the driver gives up with TimeoutError when no worker registers within ``worker_timeout``
seconds or every worker has been gone that long mid-run; workers give up when the nameserver is unreachable.
"""
import json
import logging
import multiprocessing
import os
import sys
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from galsr.training.tuning.pyro_compat import register_numpy_serializers, to_builtins
from galsr.simulator.fileio import exclusive_lock, write_text_atomic
from galsr.simulator.limits import cap_workers, whole_number
from galsr.training.tuning.space import THESIS_BEST, build_config_space, parse_groups
from galsr.training.tuning.worker import OBJECTIVES, SETTINGS_NAME, config_id_str, dataset_fingerprint

log = logging.getLogger("galsr.tune")

#: Files of hpbandster's json result logger.
RESULT_FILES = ("configs.json", "results.json")
#: Settings of a tuning directory (checked on resume).
SETTINGS_FILE = "tune_settings.json"
#: Optimisers: "bohb" (the thesis) and "random" (hpbandster's random search at the max budget, for benchmarks).
OPTIMIZERS = ("bohb", "random")


@dataclass
class TuneResult:
    """Outcome of :func:`tune`.

    Attributes:
        out_dir: str, the tuning directory.
        run_id: str, hpbandster run id of this session.
        best_config: dict or None, training config of the incumbent (lowest loss at the largest budget run).
        best_loss: float or None, its objective value.
        best_info: dict, its info (val_l1, latency_ms, n_params, ...).
        n_evaluations: int, finished evaluations in out_dir (all sessions), n_failed of them without a result.
        budget_spent: float, epochs trained in out_dir (all sessions; continued checkpoints count once).
        files: dict name -> path of the report files.
    """
    out_dir: str
    run_id: str
    best_config: dict | None
    best_loss: float | None
    best_info: dict = field(default_factory=dict)
    n_evaluations: int = 0
    n_failed: int = 0
    budget_spent: float = 0.0
    files: dict = field(default_factory=dict)


def _atomic_write_json(path, obj):
    """JSON-dump obj (numpy values converted) to path atomically (tmp file in the same dir + os.replace)."""
    write_text_atomic(path, json.dumps(to_builtins(obj), indent=2, sort_keys=True) + "\n")


def bohb_budgets(min_budget, max_budget, eta):
    """hpbandster's geometric budget ladder (array of floats, ascending), as BOHB computes it."""
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


def validate_tune_args(n_iterations, min_budget, max_budget, eta, workers, objective, optimizer="bohb"):
    """ValueError naming the parameter for every invalid tuning argument (expected vs got)."""
    if int(n_iterations) < 1:
        raise ValueError(f"n_iterations: expected >= 1, got {n_iterations}")
    if not min_budget > 0:
        raise ValueError(f"min_budget: expected > 0 epochs, got {min_budget}")
    if min_budget > max_budget:
        raise ValueError(f"min_budget ({min_budget}) > max_budget ({max_budget}): expected min_budget <= max_budget")
    if not eta >= 2:
        raise ValueError(f"eta: expected >= 2 (hpbandster keeps 1/eta of the configs per rung), got {eta}")
    if int(workers) < 0 or int(workers) != workers:
        raise ValueError(f"workers: expected >= 0 local workers (0 = only remote tune-workers), got {workers}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective: expected one of {OBJECTIVES}, got {objective!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {OPTIMIZERS}, got {optimizer!r}")


def check_port_free(host, port):
    """ValueError naming ``host:port`` when ``port`` (int; 0 = any free one, not checked) cannot be bound there,
    e.g. because another program listens on it."""
    import socket

    if not port:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the nameserver binds: TIME_WAIT is fine
        try:
            sock.bind((host, int(port)))
        except OSError as exc:
            raise ValueError(f"port {port} on {host} is not available for the tuning nameserver ({exc.strerror}); "
                             f"pick another --port, or 0 for a free one") from None


def check_dataset(path):
    """Refuse a missing, incomplete or wrongly laid out dataset (ValueError naming the file); returns str path."""
    from galsr.simulator.dataset_file import open_dataset_file

    path = str(path)
    with open_dataset_file(path, hr_factor=4) as f:  # raises ValueError for missing / incomplete files and wrong layouts
        split = f["split"][()]
    n_train, n_val = int(np.sum(split == 0)), int(np.sum(split == 1))
    if n_train < 1 or n_val < 1:
        raise ValueError(f"dataset {path!r}: needs training and validation rows, got {n_train} and {n_val}")
    return path


def load_results(out_dir, drop_failed=False):
    """hpbandster Result of the json logs in ``out_dir`` (``logged_results_to_HBS_result``), or None if empty.

    Args:
        drop_failed: remove evaluations without a result (crashed) -- needed for warm starts, which would
            otherwise feed a ``None`` loss to BOHB's model.
    """
    from hpbandster.core.result import logged_results_to_HBS_result

    results_fn = Path(out_dir) / "results.json"
    if not results_fn.exists() or results_fn.stat().st_size == 0:
        return None
    res = logged_results_to_HBS_result(str(out_dir))
    if drop_failed:
        for cid in list(res.data):
            d = res.data[cid]
            for b in [b for b, r in d.results.items() if r is None or r.get("loss") is None]:
                for table in (d.results, d.time_stamps, d.exceptions):
                    table.pop(b, None)
            if not d.results:
                del res.data[cid]
        if not res.data:
            return None
    return res


def _next_iteration_offset(out_dir):
    """First free hpbandster iteration number in out_dir's configs.json (0 when empty)."""
    fn = Path(out_dir) / "configs.json"
    if not fn.exists():
        return 0
    its = [json.loads(line)[0][0] for line in fn.read_text().splitlines() if line.strip()]
    return max(its) + 1 if its else 0


class ResultLogger:
    """hpbandster's json result logger format, appending, with iteration ids shifted by ``offset``; prints progress.

    Writes ``configs.json`` / ``results.json`` lines exactly as ``hpbandster.core.result.json_result_logger`` does
    (so ``logged_results_to_HBS_result`` reads them), but appends to existing files (resume) and adds ``offset``
    to the iteration number of each config id so that a resumed session never reuses an id. Prints one line per
    finished evaluation to stderr.
    """

    def __init__(self, directory, offset=0, total=None, progress=True):
        self.config_fn = os.path.join(directory, "configs.json")
        self.results_fn = os.path.join(directory, "results.json")
        for fn in (self.config_fn, self.results_fn):
            open(fn, "a").close()
        self.offset, self.total, self.progress = int(offset), total, progress
        self.config_ids = set()
        self.n_done, self.best, self.t0 = 0, float("inf"), time.monotonic()
        self.lock = threading.Lock()

    def shift(self, config_id):
        """Config id as logged: (iteration + offset, bracket, index)."""
        return [int(config_id[0]) + self.offset] + [int(c) for c in config_id[1:]]

    def _append(self, fn, row):
        with open(fn, "a") as fh:
            fh.write(json.dumps(to_builtins(row)) + "\n")

    def new_config(self, config_id, config, config_info):
        with self.lock:
            if tuple(config_id) not in self.config_ids:
                self.config_ids.add(tuple(config_id))
                self._append(self.config_fn, [self.shift(config_id), config, config_info])

    def __call__(self, job):
        if tuple(job.id) not in self.config_ids:
            self.new_config(job.id, job.kwargs["config"], {})
        with self.lock:
            self._append(self.results_fn, [self.shift(job.id), job.kwargs["budget"], job.timestamps, job.result,
                                           job.exception])
            self.n_done += 1
            if self.progress:
                print(self.line(job), file=sys.stderr, flush=True)

    def line(self, job):
        """One progress line for a finished job (str)."""
        cid = config_id_str(self.shift(job.id))
        head = f"[tune {self.n_done}/{self.total or '?'} {time.monotonic() - self.t0:7.1f}s] {cid} " \
               f"budget {job.kwargs['budget']:g} ep"
        if job.result is None:
            last = (job.exception or "").strip().splitlines()[-1:] or ["unknown error"]
            return f"{head}: FAILED {last[0]}"
        info, loss = job.result.get("info") or {}, float(job.result["loss"])
        self.best = min(self.best, loss)
        return (f"{head}: loss {loss:.5g} val_l1 {info.get('val_l1', float('nan')):.5g} latency "
                f"{info.get('latency_ms', float('nan')):.3g} ms params {info.get('n_params', 0)} "
                f"(best loss {self.best:.5g})")


class RunSettings:
    """Pyro4 object publishing the run settings to workers (``galsr.run_<id>.settings`` in the nameserver)."""

    def __init__(self, settings):
        self._settings = to_builtins(settings)

    def get(self):
        """The settings dict (builtin types)."""
        return self._settings


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


def _start_settings_server(settings, host, ns_host, ns_port, run_id):
    """Serve a :class:`RunSettings` on a Pyro4 daemon thread and register it in the nameserver; returns daemon."""
    import Pyro4

    daemon = Pyro4.Daemon(host=host)
    uri = daemon.register(Pyro4.expose(RunSettings)(settings))
    with Pyro4.locateNS(host=ns_host, port=ns_port) as ns:
        ns.register(SETTINGS_NAME.format(run_id=run_id), uri)
    threading.Thread(target=daemon.requestLoop, name="galsr-tune-settings", daemon=True).start()
    return daemon


def _start_local_workers(n, ns_host, ns_port, run_id, timeout, num_threads):
    """Start n local worker processes (spawn) running ``tune_worker.serve``; returns the Process list."""
    from galsr.training.tuning.worker import _local_worker_main

    ctx = multiprocessing.get_context("spawn")
    procs = []
    for i in range(n):
        p = ctx.Process(target=_local_worker_main, name=f"galsr-tune-worker-{i}",
                        args=(ns_host, ns_port, run_id, i, timeout, num_threads), daemon=True)
        p.start()
        procs.append(p)
    return procs


def _run_master(master, n_iterations, min_n_workers, local_procs, worker_timeout):
    """Run master.run in a thread; TimeoutError if every worker is gone for ``worker_timeout`` s mid-run."""
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


#: Settings that define a directory's objective: a resumed session inherits them (None) or must repeat them.
OBJECTIVE_KEYS = ("groups", "objective", "base_config", "latency_weight", "latency_cap_ms", "latency_ref_ms")


def _merge_session_record(out_dir, resume, record):
    """Check ``resume`` against out_dir's state; on resume inherit the objective settings that ``record`` leaves
    None and refuse ones that differ (ValueError). Returns the record to write (sessions accumulated)."""
    out_dir = Path(out_dir)
    fn = out_dir / SETTINGS_FILE
    has_results = (out_dir / "results.json").exists() and (out_dir / "results.json").stat().st_size > 0
    if not resume:
        if has_results:
            raise ValueError(f"--out {out_dir} already holds tuning results: pass --resume to continue, or another "
                             "--out")
        return record
    if not fn.exists():
        raise ValueError(f"--resume: {out_dir} holds no previous tuning run ({SETTINGS_FILE} missing)")
    old = json.loads(fn.read_text())
    for key in OBJECTIVE_KEYS:
        if record.get(key) is None:
            record[key] = old.get(key)
        elif to_builtins(record[key]) != old.get(key):
            raise ValueError(f"--resume: {key} of {out_dir} is {old.get(key)!r}, this run asks for {record[key]!r}; "
                             "resume with the same settings or use a new --out")
    record["sessions"] = old.get("sessions", []) + record["sessions"]
    return record


def _prepare_directory(out_dir, resume, latency_repeats, record):
    """Merge the session ``record`` with out_dir's settings (see _merge_session_record), fill the defaults
    (thesis base config, groups "all", objective "l1", w = 0.5, the measured thesis latency as reference for
    "l1+latency") and write ``tune_settings.json``. Returns the completed record."""
    record = _merge_session_record(out_dir, resume, record)
    record["base_config"] = record["base_config"] or dict(THESIS_BEST)
    record["groups"] = list(parse_groups(record["groups"] or "all"))
    record["objective"] = record["objective"] or "l1"
    record["latency_weight"] = 0.5 if record["latency_weight"] is None else float(record["latency_weight"])
    if record["objective"] == "l1+latency" and record["latency_ref_ms"] is None and record["latency_cap_ms"] is None:
        from galsr.training.tuning.worker import latency_of_config

        fp = dataset_fingerprint(record["dataset"])
        record["latency_ref_ms"] = latency_of_config({**record["base_config"], **THESIS_BEST}, fp["lr_shape"][0],
                                                     fp["lr_shape"][-1], repeats=latency_repeats)[0]
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    _atomic_write_json(Path(out_dir) / SETTINGS_FILE, record)
    return record


def tune(dataset_path, out_dir, n_iterations=4, min_budget=1, max_budget=4, eta=2, workers=1, objective="l1",
         seed=0, *, groups="all", resume=False, optimizer="bohb", base_config=None, max_train=None, max_val=None,
         latency_weight=None, latency_cap_ms=None, latency_ref_ms=None, latency_repeats=30, host="127.0.0.1",
         port=0, run_id=None, num_threads=1, worker_timeout=120.0, min_workers=None, progress=True, report=True):
    """Tune iSRCNN's sizes and training hyperparameters with hpbandster's BOHB (budget = epochs).

    Args:
        dataset_path: HDF5 dataset (complete; ``simulator.generate_dataset``).
        out_dir: tuning directory (created); holds configs.json/results.json, models/, and the report. It is
            locked while the run lasts: a second ``tune`` on it is refused.
        n_iterations: int >= 1, BOHB iterations (successive-halving brackets) in this session.
        min_budget, max_budget: epochs (> 0, min <= max); budgets are max * eta**-k, rounded to whole epochs.
        eta: float >= 2, reduction factor (the thesis: 2).
        workers: int >= 0, local worker processes (0: only workers joining with ``galsr tune-worker``), capped at
            the machine's cores (GalsrNote warning).
        objective: "l1" (validation L1) or "l1+latency" (see ``training.tune_worker.objective_loss``); None: "l1"
            (or the directory's on resume).
        seed: int, seeds every training run, and BOHB's sampler and the search space (with ``seed + k`` in the
            k-th resumed session of a directory, so a resume does not redraw the same random configurations).
        groups: "all", "local", "global" or a list, the searched hyperparameter groups (``tune_space.GROUPS``);
            None: "all" (or the directory's on resume).
        resume: continue ``out_dir``: warm-start BOHB from its results and append to them. The objective settings
            (groups, objective, base_config, latency_*) are the directory's: None inherits them, a different value
            raises ValueError.
        optimizer: "bohb" or "random" (hpbandster's RandomSearch at max_budget; same logging and report).
        base_config: dict, training config for everything not searched (default: the thesis values).
        max_train, max_val: int or None, cap on training / validation rows used per evaluation.
        latency_weight: exponent w of the soft latency penalty (objective "l1+latency"; None: 0.5).
        latency_cap_ms: float [ms] or None, hard-ish latency cap (loss *= (lat/cap)**8 above it).
        latency_ref_ms: float [ms] or None, latency with penalty factor 1 (default: measured thesis iSRCNN).
        latency_repeats: int, timed forward passes per latency measurement (median).
        host: nameserver/dispatcher address (127.0.0.1 by default; a LAN address lets other machines join).
        port: int, nameserver port (0 = a free one); one that cannot be bound is refused (ValueError naming it).
        run_id: str or None (a fresh "galsr-xxxxxxxx" by default).
        num_threads: int >= 1, torch threads per worker for training.
        worker_timeout: float [s], how long to wait for workers to register / to come back before giving up.
        min_workers: int or None, workers (local + joined) to wait for before the first job (default:
            max(1, workers)).
        progress: print one line per finished evaluation to stderr.
        report: write the report files (``training.tune_report.write_report``) at the end.

    Returns:
        :class:`TuneResult`.
    """
    from hpbandster.core.nameserver import NameServer

    validate_tune_args(n_iterations, min_budget, max_budget, eta, workers, objective or "l1", optimizer)
    num_threads = whole_number(num_threads, "num_threads (--threads)")
    workers = cap_workers(workers) if workers else 0
    check_port_free(host, port)
    groups = None if groups is None else list(parse_groups(groups))
    dataset_path = os.path.abspath(check_dataset(dataset_path))
    out_dir = Path(out_dir).absolute()
    with exclusive_lock(out_dir):  # one writer per tuning directory
        register_numpy_serializers()
        run_id = run_id or f"galsr-{uuid.uuid4().hex[:8]}"
        session = {"run_id": run_id, "optimizer": optimizer, "n_iterations": int(n_iterations),
                   "min_budget": float(min_budget), "max_budget": float(max_budget), "eta": float(eta),
                   "workers": int(workers), "seed": int(seed), "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                           time.gmtime())}
        record = _prepare_directory(out_dir, resume, latency_repeats, {
            "dataset": dataset_path, "groups": groups, "objective": objective, "sessions": [session],
            "base_config": {**THESIS_BEST, **base_config} if base_config else None, "latency_weight": latency_weight,
            "latency_cap_ms": latency_cap_ms, "latency_ref_ms": latency_ref_ms})
        groups, objective, base_config = record["groups"], record["objective"], record["base_config"]
        latency_weight, latency_cap_ms, latency_ref_ms = (record[k] for k in ("latency_weight", "latency_cap_ms",
                                                                              "latency_ref_ms"))
        # each session of a directory samples afresh: seed + session index (training itself always uses ``seed``)
        sampler_seed = int(seed) + len(record["sessions"]) - 1
        previous = load_results(out_dir, drop_failed=True) if resume else None
        offset = _next_iteration_offset(out_dir)

        settings = {"dataset_path": dataset_path, "dataset_fingerprint": dataset_fingerprint(dataset_path),
                    "objective": objective, "base_config": base_config, "max_train": max_train, "max_val": max_val,
                    "num_threads": num_threads, "model_dir": str(out_dir / "models"), "latency_ref_ms": latency_ref_ms,
                    "latency_weight": latency_weight, "latency_cap_ms": latency_cap_ms,
                    "latency_repeats": latency_repeats, "seed": int(seed)}
        total = planned_evaluations(n_iterations, min_budget, max_budget, eta, optimizer)
        logger = ResultLogger(str(out_dir), offset=offset, total=total, progress=progress)
        np.random.seed(sampler_seed)  # BOHB's config generator draws from numpy's global generator

        quiet = warnings.catch_warnings()
        quiet.__enter__()  # hpbandster 0.7.4 calls ConfigSpace 1.x APIs that warn of their deprecation on every sample
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="hpbandster")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="Pyro4")  # Event.isSet
        ns = NameServer(run_id=run_id, working_directory=str(out_dir), host=host, port=int(port))
        try:
            ns_host, ns_port = ns.start()
        except BaseException as exc:
            quiet.__exit__(None, None, None)
            if isinstance(exc, Exception):
                raise ValueError(f"cannot start the tuning nameserver on {host}:{port} ({type(exc).__name__}: "
                                 f"{exc}); pick another --port or --host") from None
            raise
        settings_daemon = master = None
        procs = []
        try:
            settings_daemon = _start_settings_server(settings, host, ns_host, ns_port, run_id)
            _atomic_write_json(out_dir / "nameserver.json", {"host": ns_host, "port": ns_port, "run_id": run_id})
            if progress:
                print(f"[tune] run {run_id}: nameserver {ns_host}:{ns_port}; {total} evaluations planned; more "
                      f"machines join with: galsr tune-worker --nameserver {ns_host}:{ns_port} --run-id {run_id}",
                      file=sys.stderr, flush=True)
            procs = _start_local_workers(int(workers), ns_host, ns_port, run_id, worker_timeout, num_threads)
            cls = _optimizer_class(optimizer)
            cls.worker_timeout, cls.local_processes = float(worker_timeout), tuple(procs)
            master = cls(configspace=build_config_space(groups, seed=sampler_seed), run_id=run_id, eta=eta,
                         min_budget=min_budget, max_budget=max_budget, nameserver=ns_host, nameserver_port=ns_port,
                         host=host, ping_interval=5, result_logger=logger, previous_result=previous,
                         working_directory=str(out_dir))
            _run_master(master, int(n_iterations), int(min_workers or max(1, int(workers))), procs,
                        float(worker_timeout))
        finally:
            if master is not None:
                master.shutdown(shutdown_workers=True)
            for p in procs:
                p.join(timeout=10)
                if p.exitcode is None:
                    p.terminate()
                    p.join(timeout=5)
            if settings_daemon is not None:
                settings_daemon.shutdown()
            try:
                ns.shutdown()
            except FileNotFoundError:  # its credentials file was removed under it
                ns.conf_fn = None
            (out_dir / "nameserver.json").unlink(missing_ok=True)
            quiet.__exit__(None, None, None)
        return summarize(out_dir, run_id=run_id, report=report)


def summarize(out_dir, run_id="", report=True):
    """TuneResult of everything logged in ``out_dir`` (writing the report files when ``report``)."""
    from galsr.training.tuning.report import collect_evaluations, write_report

    out_dir = Path(out_dir)
    settings = json.loads((out_dir / SETTINGS_FILE).read_text())
    evals = collect_evaluations(out_dir)
    files = write_report(out_dir, evals, settings) if report else {}
    ok = [e for e in evals if e["loss"] is not None]
    best = None
    if ok:
        top = max(e["budget"] for e in ok)
        best = min((e for e in ok if e["budget"] == top), key=lambda e: e["loss"])
    return TuneResult(out_dir=str(out_dir), run_id=run_id, best_config=best["train_config"] if best else None,
                      best_loss=best["loss"] if best else None, best_info=best["info"] if best else {},
                      n_evaluations=len(evals), n_failed=len(evals) - len(ok),
                      budget_spent=float(sum(e["info"].get("epochs_trained", 0) for e in ok)), files=files)
