"""The hpbandster worker of ``galsr tune``: trains one configuration for ``budget`` epochs and measures its latency.

Local workers (``galsr tune --workers W``) and workers on other machines (``galsr tune-worker --nameserver
HOST:PORT --run-id ID``) run the same :func:`serve`: it waits (with a time-out, never forever) for the run's Pyro4
nameserver, fetches the run settings the driver publishes there (dataset path and fingerprint, objective, base
config, latency reference), registers a :class:`TuneWorker` with hpbandster's own dispatcher protocol and serves
jobs until the driver shuts it down -- or until the nameserver has been unreachable for ``timeout`` seconds.
The loss is ``objective.objective_loss``, the latency ``latency.latency_of_emulator_file``.
"""
import json
import logging
import os
import threading
import time
from pathlib import Path

from hpbandster.core.worker import Worker

from galsr.simulator.fileio import write_text_atomic
from galsr.training.tuning.dataset import dataset_fingerprint
from galsr.training.tuning.latency import latency_of_emulator_file
from galsr.training.tuning.nameserver import (fetch_run_settings, local_address_towards, parse_nameserver,
                                              watch_nameserver)
from galsr.training.tuning.objective import objective_loss
from galsr.training.tuning.pyro_compat import register_numpy_serializers, to_builtins
from galsr.training.tuning.results import config_id_str
from galsr.training.tuning.space import to_train_config


class TuneWorker(Worker):
    """hpbandster Worker whose ``compute`` trains iSRCNN for ``int(budget)`` epochs via ``galsr.training.train``.

    Args:
        settings: dict published by the driver (see ``driver.run_tuning``): dataset_path, objective, base_config,
            max_train, max_val, num_threads, model_dir, latency_ref_ms, latency_weight, latency_cap_ms,
            latency_repeats, seed.
        dataset_path: str or None, overrides settings["dataset_path"] (other machine, other mount point); the
            file's fingerprint must match the driver's.
        model_dir: str or None, where models/checkpoints of this worker go (default: settings["model_dir"] if it
            exists on this machine, else ./galsr-tune-models).
        **kwargs: hpbandster Worker arguments (run_id, nameserver, nameserver_port, host, id, logger, timeout).
    """

    def __init__(self, settings, dataset_path=None, model_dir=None, **kwargs):
        kwargs.setdefault("logger", logging.getLogger("galsr.tune.worker"))
        super().__init__(**kwargs)
        self.settings = dict(settings)
        self.dataset_path = str(dataset_path or settings["dataset_path"])
        if not os.path.exists(self.dataset_path):
            raise ValueError(f"dataset {self.dataset_path!r} does not exist on this machine (give this machine's "
                             "path of the run's dataset)")
        fingerprint = dataset_fingerprint(self.dataset_path)
        if settings.get("dataset_fingerprint") and fingerprint != settings["dataset_fingerprint"]:
            raise ValueError(f"dataset {self.dataset_path!r} is not the run's dataset: fingerprint {fingerprint} "
                             f"!= {settings['dataset_fingerprint']}")
        self.n_channels, self.n_lr = fingerprint["lr_shape"][0], fingerprint["lr_shape"][-1]
        default_dir = settings.get("model_dir")
        if model_dir is None:
            model_dir = default_dir if default_dir and os.path.isdir(os.path.dirname(default_dir)) else \
                os.path.join(os.getcwd(), "galsr-tune-models")
        self.model_dir = Path(model_dir) / str(self.run_id)
        self.model_dir.mkdir(parents=True, exist_ok=True)
        self.lost_nameserver = False

    def compute(self, config_id, config, budget, working_directory):
        """Train ``config`` up to ``int(budget)`` epochs (continuing this config's lower-budget checkpoint).

        Returns:
            {"loss": objective, "info": {val_l1, latency_ms [ms], n_params, epochs, epochs_trained, train_seconds
            [s], model_path, train_config, worker}} of builtin types.
        """
        from galsr.training.train import train

        s = self.settings
        epochs = max(1, int(round(budget)))
        cfg = to_train_config(config, s.get("base_config"), epochs=epochs)
        out = self.model_dir / f"{config_id_str(config_id)}.galsr"
        side = out.with_suffix(".tune.json")
        done = json.loads(side.read_text())["epochs"] if side.exists() else 0
        resume = 0 < done < epochs and os.path.exists(str(out) + ".ckpt")
        t0 = time.perf_counter()
        result = train(self.dataset_path, str(out), cfg, epochs=epochs, seed=int(s.get("seed", 0)),
                       resume=resume, overwrite=not resume, progress=False, max_train=s.get("max_train"),
                       max_val=s.get("max_val"),
                       num_threads=s.get("num_threads"))
        seconds = time.perf_counter() - t0
        write_text_atomic(side, json.dumps({"epochs": epochs}))
        val_l1 = float(result.best_val_l1)
        latency_ms, n_params = latency_of_emulator_file(str(out), self.n_channels, self.n_lr,
                                                         repeats=int(s.get("latency_repeats", 30)))
        loss = objective_loss(val_l1, latency_ms, s.get("objective", "l1"), s.get("latency_ref_ms"),
                              float(s.get("latency_weight", 0.5)), s.get("latency_cap_ms"))
        info = {"val_l1": val_l1, "latency_ms": latency_ms, "n_params": n_params, "epochs": epochs,
                "epochs_trained": epochs - (done if resume else 0), "train_seconds": seconds,
                "model_path": str(out), "train_config": cfg, "worker": self.worker_id}
        return to_builtins({"loss": loss, "info": info})

    def stop_serving(self):
        """Stop serving because the nameserver is lost; False while the worker has no Pyro4 daemon yet."""
        if getattr(self, "pyro_daemon", None) is None:
            return False
        self.lost_nameserver = True
        self.pyro_daemon.shutdown()
        return True


def serve(nameserver, run_id, *, port=None, host=None, dataset_path=None, model_dir=None, timeout=60.0,
          worker_id=None, num_threads=None):
    """Join run ``run_id`` as one worker and serve jobs until the driver ends the run (blocking).

    Args:
        nameserver: "HOST:PORT" string, or host str with ``port`` (int) given.
        run_id: str, the run id the driver printed.
        host: str or None, address of this machine that the driver can reach (default: the interface that
            routes to the nameserver).
        dataset_path: str or None, this machine's path of the run's dataset (default: the driver's path).
        model_dir: str or None, directory for this worker's models and checkpoints.
        timeout: float > 0 [s], how long to wait for the nameserver/run, and to tolerate losing it, before giving up.
        worker_id: str/int or None, distinguishes several workers of one process/host.
        num_threads: int or None, torch threads for training (default: the run's setting).

    Returns:
        0 when shut down by the driver. Raises TimeoutError (nameserver or run not found, or lost) or ValueError.
    """
    import Pyro4

    if not timeout > 0:
        raise ValueError(f"timeout: expected > 0 seconds, got {timeout}")
    register_numpy_serializers()
    ns_host, ns_port = (nameserver, int(port)) if port is not None else parse_nameserver(nameserver)
    settings = fetch_run_settings(ns_host, ns_port, run_id, timeout=timeout)
    if num_threads is not None:
        settings["num_threads"] = int(num_threads)
    if settings.get("num_threads"):
        import torch

        torch.set_num_threads(int(settings["num_threads"]))
    worker = TuneWorker(settings, dataset_path=dataset_path, model_dir=model_dir, run_id=run_id,
                        nameserver=ns_host, nameserver_port=ns_port,
                        host=host or local_address_towards(ns_host), id=worker_id)
    from galsr.training import train  # noqa: F401  (import torch & co. now, not during the first job)
    stop = threading.Event()
    watcher = threading.Thread(target=watch_nameserver, args=(ns_host, ns_port, timeout, stop, worker.stop_serving),
                               name="galsr-tune-ns-watch", daemon=True)
    watcher.start()
    try:
        worker.run(background=False)
    except (Pyro4.errors.PyroError, OSError):
        # after serving, only the de-registration can fail (the driver may already have stopped the nameserver)
        if not worker.lost_nameserver and getattr(worker, "pyro_daemon", None) is None:
            raise
    finally:
        stop.set()
    if worker.lost_nameserver:
        raise TimeoutError(f"lost the nameserver {ns_host}:{ns_port} for {timeout:g} s; worker of run "
                           f"{run_id!r} stopped")
    return 0
