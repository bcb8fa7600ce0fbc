"""BOHB tuning of iSRCNN with hpbandster (thesis chapter 5): one session, from the settings to the report.

:func:`tune` runs hpbandster's BOHB (or its random search, for comparison) with budget = training epochs over the
thesis search space (``space``). It records the session in the directory (``record``), starts a Pyro4 nameserver
(127.0.0.1 and a free port unless a host is given) and publishes the run settings there (``nameserver``), starts
``workers`` local worker processes (``local_workers``; the same code as ``galsr tune-worker``, so machines that join
with ``--nameserver HOST:PORT --run-id ID`` are equal citizens), logs every result in hpbandster's json format into
``out_dir`` (``results``) and finally writes the report (``report``). ``resume=True`` warm-starts BOHB's model from
the results already in ``out_dir`` (hpbandster's ``previous_result``) and appends the new results to the same files,
with iteration numbers continued so config ids never collide.

Nothing waits forever: the driver gives up with TimeoutError when no worker registers within ``worker_timeout``
seconds or every worker has been gone that long mid-run (``optimizer``); workers give up when the nameserver is
unreachable.
"""
import contextlib
import dataclasses
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from galsr.simulator.fileio import exclusive_lock, write_json_atomic
from galsr.simulator.limits import cap_workers
from galsr.training.tuning.dataset import check_dataset, dataset_fingerprint
from galsr.training.tuning.local_workers import local_workers
from galsr.training.tuning.nameserver import check_port_free, published_settings, running_nameserver
from galsr.training.tuning.optimizer import make_optimizer, planned_evaluations, quiet_deprecations, run_optimizer
from galsr.training.tuning.pyro_compat import register_numpy_serializers
from galsr.training.tuning.record import SETTINGS_FILE, prepare_directory
from galsr.training.tuning.report import collect_evaluations, incumbent, write_report
from galsr.training.tuning.results import ResultLogger, load_results, next_iteration_offset
from galsr.training.tuning.settings import TuneSettings
from galsr.training.tuning.space import THESIS_BEST, build_config_space

#: File naming the running nameserver and run id of a tuning directory (removed at the end of the session).
NAMESERVER_FILE = "nameserver.json"


@dataclass
class TuneResult:
    """Outcome of :func:`tune`.

    Attributes:
        out_dir: str, the tuning directory.
        run_id: str, hpbandster run id of this session.
        best_config: dict or None, training config of the incumbent (lowest loss at the largest budget run).
        best_loss: float or None, its objective value.
        best_info: dict, its info (val_l1, latency_ms [ms], n_params, ...).
        n_evaluations: int, finished evaluations in out_dir (all sessions), n_failed of them without a result.
        budget_spent: float [epochs], epochs trained in out_dir (all sessions; continued checkpoints count once).
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


def tune(dataset_path, out_dir, **settings):
    """Tune iSRCNN's sizes and training hyperparameters with hpbandster's BOHB (budget = epochs).

    Args:
        dataset_path: str, HDF5 dataset (complete; ``galsr generate``).
        out_dir: str or Path, tuning directory (created); holds configs.json/results.json, models/, and the report.
        **settings: the fields of :class:`~galsr.training.tuning.settings.TuneSettings` (n_iterations, min_budget,
            max_budget, eta, workers, objective, seed, groups, resume, ...); ValueError names an invalid one.

    Returns:
        :class:`TuneResult`.
    """
    return run_tuning(dataset_path, out_dir, TuneSettings(**settings))


def _session_record(s, dataset_path, run_id):
    """The directory record this session asks for (see ``record.merge_session_record``): dict."""
    session = {"run_id": run_id, "optimizer": s.optimizer, "n_iterations": int(s.n_iterations),
               "min_budget": float(s.min_budget), "max_budget": float(s.max_budget), "eta": float(s.eta),
               "workers": int(s.workers), "seed": int(s.seed),
               "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return {"dataset": dataset_path, "groups": None if s.groups is None else list(s.groups),
            "objective": s.objective, "sessions": [session],
            "base_config": {**THESIS_BEST, **s.base_config} if s.base_config else None,
            "latency_weight": s.latency_weight, "latency_cap_ms": s.latency_cap_ms,
            "latency_ref_ms": s.latency_ref_ms}


def _worker_settings(s, record, dataset_path, out_dir):
    """The run settings published to the workers (dict; see ``worker.TuneWorker``)."""
    return {"dataset_path": dataset_path, "dataset_fingerprint": dataset_fingerprint(dataset_path),
            "objective": record["objective"], "base_config": record["base_config"], "max_train": s.max_train,
            "max_val": s.max_val, "num_threads": s.num_threads, "model_dir": str(Path(out_dir) / "models"),
            "latency_ref_ms": record["latency_ref_ms"], "latency_weight": record["latency_weight"],
            "latency_cap_ms": record["latency_cap_ms"], "latency_repeats": s.latency_repeats, "seed": int(s.seed)}


@contextlib.contextmanager
def _address_file(path, host, port, run_id):
    """Write {host, port, run_id} of the running nameserver to ``path`` for the block; remove it after."""
    try:
        write_json_atomic(path, {"host": host, "port": port, "run_id": run_id}, sort_keys=True)
        yield path
    finally:
        Path(path).unlink(missing_ok=True)


def run_tuning(dataset_path, out_dir, settings):
    """One tuning session of :class:`TuneSettings` ``settings`` on ``dataset_path`` in ``out_dir`` (see
    :func:`tune`); returns :class:`TuneResult`."""
    s = settings
    if s.workers:
        s = dataclasses.replace(s, workers=cap_workers(s.workers))
    check_port_free(s.host, s.port)
    dataset_path = os.path.abspath(check_dataset(dataset_path))
    out_dir = Path(out_dir).absolute()
    with exclusive_lock(out_dir):  # one writer per tuning directory
        return _run_locked(dataset_path, out_dir, s)


def _run_locked(dataset_path, out_dir, s):
    register_numpy_serializers()
    run_id = s.run_id or f"galsr-{uuid.uuid4().hex[:8]}"
    record = prepare_directory(out_dir, s.resume, s.latency_repeats, _session_record(s, dataset_path, run_id))
    # each session of a directory samples afresh: seed + session index (training itself always uses ``seed``)
    sampler_seed = int(s.seed) + len(record["sessions"]) - 1
    previous = load_results(out_dir, drop_failed=True) if s.resume else None
    total = planned_evaluations(s.n_iterations, s.min_budget, s.max_budget, s.eta, s.optimizer)
    logger = ResultLogger(str(out_dir), offset=next_iteration_offset(out_dir), total=total, progress=s.progress)
    worker_settings = _worker_settings(s, record, dataset_path, out_dir)
    np.random.seed(sampler_seed)  # BOHB's config generator draws from numpy's global generator

    with contextlib.ExitStack() as stack:  # unwinds in reverse: master, workers, address file, settings, nameserver
        stack.enter_context(quiet_deprecations())
        ns_host, ns_port = stack.enter_context(running_nameserver(run_id, out_dir, s.host, s.port))
        stack.enter_context(published_settings(worker_settings, s.host, ns_host, ns_port, run_id))
        stack.enter_context(_address_file(out_dir / NAMESERVER_FILE, ns_host, ns_port, run_id))
        if s.progress:
            print(f"[tune] run {run_id}: nameserver {ns_host}:{ns_port}; {total} evaluations planned; more "
                  f"machines join with: galsr tune-worker --nameserver {ns_host}:{ns_port} --run-id {run_id}",
                  file=sys.stderr, flush=True)
        procs = stack.enter_context(local_workers(int(s.workers), ns_host, ns_port, run_id, s.worker_timeout,
                                                  s.num_threads))
        master = make_optimizer(s.optimizer, s.worker_timeout, procs,
                                configspace=build_config_space(record["groups"], seed=sampler_seed), run_id=run_id,
                                eta=s.eta, min_budget=s.min_budget, max_budget=s.max_budget, nameserver=ns_host,
                                nameserver_port=ns_port, host=s.host, ping_interval=5, result_logger=logger,
                                previous_result=previous, working_directory=str(out_dir))
        stack.callback(master.shutdown, shutdown_workers=True)
        run_optimizer(master, int(s.n_iterations), int(s.min_workers or max(1, int(s.workers))), procs,
                      float(s.worker_timeout))
    return summarize(out_dir, run_id=run_id, report=s.report)


def summarize(out_dir, run_id="", report=True):
    """TuneResult of everything logged in ``out_dir`` (str or Path), writing the report files when ``report``."""
    out_dir = Path(out_dir)
    settings = json.loads((out_dir / SETTINGS_FILE).read_text())
    evals = collect_evaluations(out_dir)
    files = write_report(out_dir, evals, settings) if report else {}
    ok = [e for e in evals if e["loss"] is not None]
    best = incumbent(evals)
    return TuneResult(out_dir=str(out_dir), run_id=run_id, best_config=best["train_config"] if best else None,
                      best_loss=best["loss"] if best else None, best_info=best["info"] if best else {},
                      n_evaluations=len(evals), n_failed=len(evals) - len(ok),
                      budget_spent=float(sum(e["info"].get("epochs_trained", 0) for e in ok)), files=files)
