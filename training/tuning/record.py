"""A tuning directory's record (``tune_settings.json``): its objective settings and the sessions run in it.

The objective settings (:data:`OBJECTIVE_KEYS`) define what the losses in a directory mean, so every session of a
directory shares them: a resumed session inherits the ones it leaves None and may not change the others. Each
session (run id, optimizer, iterations, budgets, seed, start time) is appended to ``sessions``.
"""
import json
from pathlib import Path

from galsr.simulator.fileio import write_json_atomic
from galsr.training.tuning.dataset import dataset_fingerprint
from galsr.training.tuning.latency import latency_of_config
from galsr.training.tuning.pyro_compat import to_builtins
from galsr.training.tuning.results import has_results
from galsr.training.tuning.space import THESIS_BEST, parse_groups

#: Settings of a tuning directory (checked on resume).
SETTINGS_FILE = "tune_settings.json"
#: Settings that define a directory's objective: a resumed session inherits them (None) or must repeat them.
OBJECTIVE_KEYS = ("groups", "objective", "base_config", "latency_weight", "latency_cap_ms", "latency_ref_ms")


def merge_session_record(out_dir, resume, record):
    """Check ``resume`` against out_dir's state and merge the new session ``record`` with the directory's.

    Args:
        out_dir: str or Path, the tuning directory.
        resume: bool, continue the directory (False refuses a directory that already holds results).
        record: dict with the :data:`OBJECTIVE_KEYS` (None: inherit on resume) and "sessions" (list of one dict).

    Returns:
        dict, the record to write (objective settings inherited, sessions accumulated). Raises ValueError when
        ``resume`` does not fit the directory or an objective setting differs from the directory's.
    """
    out_dir = Path(out_dir)
    fn = out_dir / SETTINGS_FILE
    if not resume:
        if has_results(out_dir):
            raise ValueError(f"tuning directory {out_dir} already holds tuning results: continue it with resume=True, "
                             "or use another directory")
        return record
    if not fn.exists():
        raise ValueError(f"resume: {out_dir} holds no previous tuning run ({SETTINGS_FILE} missing)")
    old = json.loads(fn.read_text())
    for key in OBJECTIVE_KEYS:
        if record.get(key) is None:
            record[key] = old.get(key)
        elif to_builtins(record[key]) != old.get(key):
            raise ValueError(f"resume: {key} of {out_dir} is {old.get(key)!r}, this run asks for {record[key]!r}; "
                             "resume with the same settings or use a new directory")
    record["sessions"] = old.get("sessions", []) + record["sessions"]
    return record


def prepare_directory(out_dir, resume, latency_repeats, record):
    """Merge the session ``record`` with out_dir's (:func:`merge_session_record`), fill the defaults and write
    ``tune_settings.json``.

    Defaults: the thesis base config, groups "all", objective "l1", latency weight w = 0.5 and, for "l1+latency"
    without a reference or cap, the latency [ms] of the thesis iSRCNN measured here (``latency_repeats``: int, timed
    passes) as reference. Returns the completed record (dict).
    """
    record = merge_session_record(out_dir, resume, record)
    record["base_config"] = record["base_config"] or dict(THESIS_BEST)
    record["groups"] = list(parse_groups(record["groups"] or "all"))
    record["objective"] = record["objective"] or "l1"
    record["latency_weight"] = 0.5 if record["latency_weight"] is None else float(record["latency_weight"])
    if record["objective"] == "l1+latency" and record["latency_ref_ms"] is None and record["latency_cap_ms"] is None:
        fp = dataset_fingerprint(record["dataset"])
        record["latency_ref_ms"] = latency_of_config({**record["base_config"], **THESIS_BEST}, fp["lr_shape"][0],
                                                     fp["lr_shape"][-1], repeats=latency_repeats)[0]
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_json_atomic(Path(out_dir) / SETTINGS_FILE, to_builtins(record), sort_keys=True)
    return record
