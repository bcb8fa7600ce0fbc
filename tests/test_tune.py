"""BOHB tuning (training.tune*): a real two-worker hpbandster run on 127.0.0.1 with real training, resume, report.

One module-scoped run (tiny dataset, budgets 1-2 epochs, row caps) is shared by the tests that inspect it: one
local worker process plus one ``galsr tune-worker`` subprocess that joins through the nameserver like a second
machine would; then a resumed session appends to the same logs.
"""
import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import serpent

from tiny_data import write_tiny_dataset
from galsr.training.tuning.pyro_compat import register_numpy_serializers, to_builtins
from galsr.training.tuning.driver import tune
from galsr.training.tuning.report import collect_evaluations, pareto_mask
from galsr.training.tuning.space import build_config_space, hyperparameter_names, to_train_config
from galsr.training.tuning.objective import objective_loss
from galsr.training.tuning.settings import TuneSettings

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(min_budget=1, max_budget=2, eta=2, seed=3, max_train=12, max_val=6, worker_timeout=60.0,
            progress=False)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A complete tiny dataset (18 galaxies, LR 5 x 5 -> HR 20 x 20) written by the real simulator."""
    path = tmp_path_factory.mktemp("tune_data") / "tiny.h5"
    return write_tiny_dataset(path, n=18, seed=5)


@pytest.fixture(scope="module")
def run(dataset, tmp_path_factory):
    """Session 1: one local worker + one `galsr tune-worker` subprocess; session 2: resume with a local worker."""
    out = tmp_path_factory.mktemp("tune") / "tune_dir"
    port, run_id = _free_port(), "galsr-test-remote"
    joiner = subprocess.Popen([sys.executable, "-m", "galsr", "tune-worker", "--nameserver", f"127.0.0.1:{port}",
                               "--run-id", run_id, "--timeout", "60", "--threads", "1"], cwd=str(ROOT),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = tune(dataset, out, n_iterations=2, workers=1, min_workers=2, port=port, run_id=run_id,
                     objective="l1+latency", **TINY)
        joiner_rc = joiner.wait(timeout=60)
    finally:
        if joiner.poll() is None:
            joiner.kill()
    n_first = len(collect_evaluations(out))
    second = tune(dataset, out, n_iterations=1, workers=1, objective="l1+latency", resume=True, **TINY)
    return {"out": out, "first": first, "second": second, "n_first": n_first, "joiner_rc": joiner_rc,
            "joiner_log": joiner.stdout.read()}


def test_two_worker_run_completes_and_logs(run):
    out, first = run["out"], run["first"]
    assert run["joiner_rc"] == 0, run["joiner_log"]
    lines = (out / "results.json").read_text().splitlines()
    assert run["n_first"] == first.n_evaluations == 5  # BOHB brackets for budgets (1, 2), eta 2: 3 + 2 runs
    assert first.n_failed == 0
    evals = collect_evaluations(out)[:run["n_first"]]
    workers = {e["info"]["worker"] for e in evals}
    assert len(workers) == 2  # the local process and the joined `galsr tune-worker`
    assert len(lines) >= 5
    for e in evals:
        info = e["info"]
        assert info["latency_ms"] > 0 and info["n_params"] > 0 and 0 < info["val_l1"] < 1
        assert e["loss"] == pytest.approx(objective_loss(info["val_l1"], info["latency_ms"], "l1+latency",
                                                         json.loads((out / "tune_settings.json").read_text())
                                                         ["latency_ref_ms"], 0.5))
    # a config promoted from 1 to 2 epochs continued its checkpoint: one extra epoch trained, not two
    promoted = [e for e in evals if e["budget"] == 2 and e["config_id"][0] == 0]
    assert promoted and all(e["info"]["epochs_trained"] == 1 for e in promoted)


def test_resume_appends_with_fresh_ids(run):
    out, second = run["out"], run["second"]
    evals = collect_evaluations(out)
    assert second.n_evaluations == len(evals) == run["n_first"] + 3
    ids = [tuple(e["config_id"]) + (e["budget"],) for e in evals]
    assert len(set(ids)) == len(ids)
    assert min(e["config_id"][0] for e in evals[run["n_first"]:]) == 2  # iterations continue after 0, 1
    assert len(json.loads((out / "tune_settings.json").read_text())["sessions"]) == 2


def test_report_files(run):
    out = run["out"]
    files = run["second"].files
    for key in ("best_config", "trajectory", "trajectory_png", "importance", "importance_md",
                "parallel_coordinates", "pareto", "pareto_png", "summary", "evaluations"):
        assert Path(files[key]).stat().st_size > 0, key
    rows = (out / "importance.csv").read_text().splitlines()
    assert rows[0] == "hyperparameter,importance,correlation_with_loss"
    names = [r.split(",")[0] for r in rows[1:]]
    assert names == list(hyperparameter_names("all"))
    assert sum(float(r.split(",")[1]) for r in rows[1:]) == pytest.approx(1.0, abs=0.01) or \
        all(float(r.split(",")[1]) == 0 for r in rows[1:])


def test_pareto_set_is_non_dominated(run):
    summary = json.loads((run["out"] / "summary.json").read_text())
    evals = [e for e in collect_evaluations(run["out"]) if e["loss"] is not None and e["budget"] == 2]
    front = {tuple(p["config_id"]) for p in summary["pareto"]}
    assert front
    pts = {tuple(e["config_id"]): (e["info"]["val_l1"], e["info"]["latency_ms"]) for e in evals}
    for f in front:
        for other in pts.values():
            assert not (other[0] <= pts[f][0] and other[1] <= pts[f][1] and other != pts[f])
    for cid, p in pts.items():  # everything off the front is dominated by a front member
        if cid not in front:
            assert any(pts[f][0] <= p[0] and pts[f][1] <= p[1] for f in front)


def test_best_config_trains(run, dataset, tmp_path, capsys):
    """best_config.json is accepted by `galsr train --config` and trains."""
    from galsr.cli import main

    best = run["out"] / "best_config.json"
    assert set(hyperparameter_names("all")) <= set(json.loads(best.read_text()))
    out = tmp_path / "best.galsr"
    assert main(["train", dataset, "--out", str(out), "--config", str(best), "--epochs", "1", "--max-train", "12",
                 "--max-val", "6", "--threads", "1"]) == 0, capsys.readouterr().err
    assert out.exists() and "best validation L1" in capsys.readouterr().out


def test_pareto_mask_random_points():
    rng = np.random.default_rng(0)
    pts = rng.random((60, 2))
    mask = pareto_mask(pts)
    front = pts[mask]
    for p in front:
        assert not np.any(np.all(pts <= p, axis=1) & np.any(pts < p, axis=1))
    for p in pts[~mask]:
        assert np.any(np.all(front <= p, axis=1) & np.any(front < p, axis=1))


def test_numpy_scalars_cross_serpent():
    """ConfigSpace 1.x samples hold numpy scalars; after registration serpent round-trips them as builtins."""
    register_numpy_serializers()
    cs = build_config_space("all", seed=1)
    for config in cs.sample_configuration(5):
        raw = dict(config)
        back = serpent.loads(serpent.dumps({"config": raw, "loss": np.float64(0.5), "n": np.int64(3)}))
        assert back["config"] == to_builtins(raw) and back["loss"] == 0.5 and back["n"] == 3
        assert type(back["config"]["batch_size"]) is int
        cfg = to_train_config(raw, epochs=2)
        assert json.loads(json.dumps(cfg)) == cfg


def test_latency_objective():
    assert objective_loss(0.01, 4.0, "l1") == 0.01
    assert objective_loss(0.01, 4.0, "l1+latency", ref_ms=1.0, weight=0.5) == pytest.approx(0.02)
    assert objective_loss(0.01, 2.2, "l1+latency", cap_ms=2.0) == pytest.approx(0.01 * 1.1 ** 8)
    assert objective_loss(0.01, 1.0, "l1+latency", cap_ms=2.0) == 0.01


@pytest.mark.parametrize("kwargs, match", [
    (dict(min_budget=4, max_budget=2), "min_budget"),
    (dict(eta=1.5), "eta"),
    (dict(n_iterations=0), "n_iterations"),
    (dict(objective="speed"), "objective"),
    (dict(workers=-1), "workers"),
])
def test_bad_arguments(kwargs, match):
    args = dict(n_iterations=1, min_budget=1, max_budget=2, eta=2, workers=1, objective="l1")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        TuneSettings(**args)


@pytest.mark.parametrize("kwargs, match", [
    (dict(optimizer="grid"), "optimizer"),
    (dict(groups="local,size"), "groups"),
    (dict(worker_timeout=0), "worker_timeout"),
    (dict(min_workers=0), "min_workers"),
    (dict(port=70000), "port"),
    (dict(latency_repeats=0), "latency_repeats"),
])
def test_settings_refuse_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TuneSettings(**kwargs)


def test_settings_normalise_and_freeze():
    s = TuneSettings(groups="global,local", objective=None)
    assert s.groups == ("local", "global") and s.objective is None
    assert TuneSettings(groups=None).groups is None
    with pytest.raises(AttributeError):
        s.workers = 3
    with pytest.raises(TypeError):
        TuneSettings(n_iteration=2)


def test_incomplete_dataset_refused(dataset, tmp_path):
    import shutil

    import h5py

    bad = tmp_path / "incomplete.h5"
    shutil.copy(dataset, bad)
    with h5py.File(bad, "r+") as f:
        f.attrs["complete"] = False
    with pytest.raises(ValueError, match="incomplete|complete"):
        tune(str(bad), tmp_path / "t", n_iterations=1, min_budget=1, max_budget=1, eta=2, workers=1)
    with pytest.raises(ValueError, match="does not exist"):
        tune(str(tmp_path / "missing.h5"), tmp_path / "t", n_iterations=1, min_budget=1, max_budget=1, eta=2)


def test_cli_bad_input_and_unreachable_nameserver(dataset, tmp_path, capsys):
    from galsr.cli import main

    assert main(["tune", dataset, "--out", str(tmp_path / "t"), "--min-budget", "5", "--max-budget", "2"]) == 2
    assert "min_budget" in capsys.readouterr().err
    assert main(["tune-worker", "--nameserver", f"127.0.0.1:{_free_port()}", "--run-id", "nobody",
                 "--timeout", "1"]) == 2
    assert "no hpbandster/Pyro4 nameserver answered" in capsys.readouterr().err


def test_no_worker_times_out(dataset, tmp_path):
    with pytest.raises(TimeoutError, match="registered within"):
        tune(dataset, tmp_path / "t", n_iterations=1, min_budget=1, max_budget=1, eta=2, workers=0,
             worker_timeout=1.0, progress=False)


def test_existing_results_need_resume(run, dataset):
    with pytest.raises(ValueError, match="resume=True"):
        tune(dataset, run["out"], n_iterations=1, min_budget=1, max_budget=1, eta=2, workers=1)
