"""The hpbandster worker of ``galsr tune``: trains one configuration for ``budget`` epochs and measures its latency.

Local workers (``galsr tune --workers W``) and workers on other machines (``galsr tune-worker --nameserver
HOST:PORT --run-id ID``) run the same :func:`serve`: it waits (with a time-out, never forever) for the run's Pyro4
nameserver, fetches the run settings the driver publishes there (dataset path and fingerprint, objective, base
config, latency reference), registers an :class:`TuneWorker` with hpbandster's own dispatcher protocol and serves
jobs until the driver shuts it down -- or until the nameserver has been unreachable for ``timeout`` seconds.

Objective (``loss`` that BOHB minimises, :func:`objective_loss`):

- ``"l1"``: the best validation L1 (normalised maps) reached within ``budget`` epochs.
- ``"l1+latency"``: ``val_l1 * (latency_ms / ref_ms) ** w`` (a MnasNet-style soft constraint: with ``w = 0.5`` a
  network twice as slow must be ``sqrt(2) = 1.41`` times more accurate to tie; the thesis's own trade-off, Table 4.1,
  0.0013 L1 at 2.5 ms against 0.0018 at 1.5 ms, is a tie at ``w = 0.64``), times ``(latency_ms / cap_ms) ** 8`` when a
  cap is given and exceeded (10 % over the cap doubles the loss). ``ref_ms`` defaults to the latency of the thesis
  iSRCNN (60/16/8) measured by the driver on its machine at start.

Latency = one forward pass of the trained network's inference copy (what ``galsr.Emulator`` runs) on one galaxy
(batch 1), one CPU thread, in ``torch.inference_mode`` after warm-up, in milliseconds: the median of repeated
passes (galsr.emulator.latency, the measure every galsr latency uses). It excludes the (configuration-independent) LR simulation and normalisation.
"""
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

from hpbandster.core.worker import Worker

from galsr.training.tuning.pyro_compat import register_numpy_serializers, to_builtins
from galsr.simulator.fileio import write_text_atomic
from galsr.training.tuning.space import to_train_config

#: Name under which the driver publishes the run settings in the nameserver (format with run_id).
SETTINGS_NAME = "galsr.run_{run_id}.settings"
#: Objectives understood by the worker.
OBJECTIVES = ("l1", "l1+latency")
#: Exponent of the latency-cap penalty (loss *= (latency / cap) ** CAP_EXPONENT above the cap).
CAP_EXPONENT = 8.0

log = logging.getLogger("galsr.tune")


def parse_nameserver(text):
    """Split ``"HOST:PORT"`` into (host: str, port: int); ValueError naming --nameserver otherwise."""
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--nameserver: expected HOST:PORT (e.g. 127.0.0.1:45123), got {text!r}")
    return host.strip("[]"), int(port)


def _ns_proxy(host, port, timeout):
    """A Pyro4 proxy of the nameserver at host:port with a per-call time-out (s), not yet connected."""
    import Pyro4

    proxy = Pyro4.Proxy(f"PYRO:Pyro.NameServer@{host}:{int(port)}")
    proxy._pyroTimeout = timeout
    return proxy


def ping_nameserver(host, port, timeout=5.0):
    """True if a Pyro4 nameserver answers at host:port within ``timeout`` seconds."""
    import Pyro4

    try:
        with _ns_proxy(host, port, timeout) as ns:
            ns.ping()
        return True
    except (Pyro4.errors.PyroError, OSError):
        return False


def wait_for_nameserver(host, port, timeout=60.0, interval=1.0):
    """Block until the nameserver at host:port answers; TimeoutError (with the address) after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        if ping_nameserver(host, port, timeout=min(5.0, max(timeout, 0.5))):
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no hpbandster/Pyro4 nameserver answered at {host}:{port} within {timeout:g} s "
                               "(is `galsr tune` running, and are host, port and firewall right?)")
        time.sleep(interval)


def fetch_run_settings(host, port, run_id, timeout=60.0, interval=1.0):
    """The settings dict the driver of run ``run_id`` published in the nameserver at host:port.

    Raises TimeoutError naming the run id if no run of that id shows up within ``timeout`` seconds.
    """
    import Pyro4

    wait_for_nameserver(host, port, timeout=timeout, interval=interval)
    name = SETTINGS_NAME.format(run_id=run_id)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with _ns_proxy(host, port, 5.0) as ns:
                uri = ns.lookup(name)
            with Pyro4.Proxy(uri) as settings:
                settings._pyroTimeout = 10.0
                return dict(settings.get())
        except (Pyro4.errors.PyroError, OSError):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"nameserver {host}:{port} has no run with --run-id {run_id!r} "
                                   f"(waited {timeout:g} s; the driver prints the run id)") from None
            time.sleep(interval)


def local_address_towards(host):
    """IP address of this machine's interface that routes to ``host`` (127.0.0.1 for a loopback nameserver)."""
    if host in ("localhost", "::1") or host.startswith("127."):
        return "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host, 9))  # UDP connect sends nothing; it only picks the route
        return s.getsockname()[0]


def objective_loss(val_l1, latency_ms, objective="l1", ref_ms=None, weight=0.5, cap_ms=None):
    """The scalar BOHB minimises (see the module docstring for the formula).

    Args:
        val_l1: float, best validation L1 on normalised maps.
        latency_ms: float, single-galaxy CPU latency [ms].
        objective: "l1" or "l1+latency".
        ref_ms: float [ms], latency at which the penalty factor is 1 (needed for "l1+latency" without a cap).
        weight: float >= 0, exponent w of the soft penalty.
        cap_ms: float [ms] or None, latency cap; above it the loss is multiplied by (latency/cap)**8.

    Returns:
        float loss.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective: expected one of {OBJECTIVES}, got {objective!r}")
    loss = float(val_l1)
    if objective == "l1":
        return loss
    if ref_ms:
        loss *= (latency_ms / ref_ms) ** weight
    if cap_ms and latency_ms > cap_ms:
        loss *= (latency_ms / cap_ms) ** CAP_EXPONENT
    return loss


def latency_of_model(model, n_channels, n_lr, repeats=30):
    """(latency_ms, n_params) of a network on one galaxy, timed on the inference copy the Emulator runs
    (``training.models.inference_model``: sub-pixel instead of transposed convolutions, matrix bicubic) with an
    input (1, C, n, n) of normalised LR maps (models fold channels into the batch themselves in per-channel mode)."""
    from galsr.emulator.architectures import inference_model, n_parameters
    from galsr.emulator.latency import network_latency_ms

    fast = inference_model(model, n_lr)
    return network_latency_ms(fast, (1, n_channels, n_lr, n_lr), threads=1, repeats=repeats), n_parameters(model)


def latency_of_emulator_file(path, n_channels, n_lr, repeats=30):
    """(latency_ms, n_params) of the trained network stored in an emulator file."""
    from galsr.emulator.file_format import load_emulator

    return latency_of_model(load_emulator(path).build_model(), n_channels, n_lr, repeats=repeats)


def latency_of_config(train_config, n_channels, n_lr, repeats=30):
    """(latency_ms, n_params) of an untrained network built from a training config (latency needs no weights)."""
    from galsr.emulator.architectures import build_model

    model = build_model(train_config.get("model", "isrcnn"), channels=n_channels, **{
        k: v for k, v in train_config.items() if k not in ("model", "channels")})
    return latency_of_model(model, n_channels, n_lr, repeats=repeats)


def dataset_fingerprint(path):
    """Identity of a dataset file: {"fingerprint": sha256 of params/split/seed (training.data), "lr_shape"}."""
    from galsr.simulator.dataset_file import open_dataset_file
    from galsr.training.data import fingerprint

    with open_dataset_file(path, hr_factor=4) as f:
        return {"fingerprint": fingerprint(f), "lr_shape": [int(d) for d in f["lr"].shape[1:]]}


def config_id_str(config_id):
    """'i0_0_3' for hpbandster's config id (iteration, bracket, index)."""
    return "i" + "_".join(str(int(c)) for c in config_id)


class TuneWorker(Worker):
    """hpbandster Worker whose ``compute`` trains iSRCNN for ``int(budget)`` epochs via ``training.train.train``.

    Args:
        settings: dict published by the driver (see ``training.tune``): dataset_path, objective, base_config,
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
            raise ValueError(f"dataset {self.dataset_path!r} does not exist on this machine (pass --dataset PATH)")
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

    def compute(self, config_id, config, budget, working_directory):
        """Train ``config`` up to ``int(budget)`` epochs (continuing this config's lower-budget checkpoint).

        Returns:
            {"loss": objective, "info": {val_l1, latency_ms, n_params, epochs, epochs_trained, train_seconds,
            model_path, train_config, worker}} of builtin types.
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


def _watch_nameserver(worker, host, port, timeout, stop, interval=2.0):
    """Thread body: shut the worker down once the nameserver has been unreachable for ``timeout`` seconds."""
    lost_since = None
    while not stop.wait(interval):
        if ping_nameserver(host, port, timeout=min(5.0, timeout)):
            lost_since = None
            continue
        lost_since = lost_since or time.monotonic()
        if time.monotonic() - lost_since >= timeout and getattr(worker, "pyro_daemon", None) is not None:
            worker.lost_nameserver = True
            worker.pyro_daemon.shutdown()
            return


def serve(nameserver, run_id, *, port=None, host=None, dataset_path=None, model_dir=None, timeout=60.0,
          worker_id=None, num_threads=None):
    """Join run ``run_id`` as one worker and serve jobs until the driver ends the run (blocking).

    Args:
        nameserver: "HOST:PORT" string, or host str with ``port`` given.
        run_id: str, the run id the driver printed.
        host: str or None, address of this machine that the driver can reach (default: the interface that
            routes to the nameserver).
        dataset_path: str or None, this machine's path of the run's dataset (default: the driver's path).
        model_dir: str or None, directory for this worker's models and checkpoints.
        timeout: float [s], how long to wait for the nameserver/run, and to tolerate losing it, before giving up.
        worker_id: str/int or None, distinguishes several workers of one process/host.
        num_threads: int or None, torch threads for training (default: the run's setting).

    Returns:
        0 when shut down by the driver. Raises TimeoutError (nameserver or run not found, or lost) or ValueError.
    """
    import Pyro4

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
    worker.lost_nameserver = False
    from galsr.training import train  # noqa: F401  (import torch & co. now, not during the first job)
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_nameserver, args=(worker, ns_host, ns_port, timeout, stop),
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


def _local_worker_main(nameserver, port, run_id, worker_id, timeout, num_threads):
    """Entry point of a local worker process started by the driver (spawn context)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    serve(nameserver, run_id, port=port, host="127.0.0.1" if nameserver.startswith("127.") else None,
          timeout=timeout, worker_id=worker_id, num_threads=num_threads)
