"""hpbandster's json result logs of a tuning directory: writing them (appending) and reading them for a warm start.

A directory's ``configs.json`` / ``results.json`` follow ``hpbandster.core.result.json_result_logger`` line for line,
so ``logged_results_to_HBS_result`` reads them. A resumed session appends to the same files with iteration numbers
shifted past the logged ones (:func:`next_iteration_offset`), so config ids never collide, and warm-starts BOHB from
the successful results (:func:`load_results` with ``drop_failed``).
"""
import json
import os
import sys
import threading
import time
from pathlib import Path

from galsr.training.tuning.pyro_compat import to_builtins

#: hpbandster's json result logger files: sampled configurations, finished evaluations.
CONFIGS_FILE, RESULTS_FILE = "configs.json", "results.json"
#: Files of hpbandster's json result logger.
RESULT_FILES = (CONFIGS_FILE, RESULTS_FILE)


def config_id_str(config_id):
    """'i0_0_3' (str) for hpbandster's config id (iteration, bracket, index)."""
    return "i" + "_".join(str(int(c)) for c in config_id)


def has_results(out_dir):
    """True if ``out_dir`` holds a non-empty results log."""
    fn = Path(out_dir) / RESULTS_FILE
    return fn.exists() and fn.stat().st_size > 0


def load_results(out_dir, drop_failed=False):
    """hpbandster Result of the json logs in ``out_dir`` (``logged_results_to_HBS_result``), or None if empty.

    Args:
        out_dir: str or Path, the tuning directory.
        drop_failed: bool, remove evaluations without a result (crashed) -- needed for warm starts, which would
            otherwise feed a ``None`` loss to BOHB's model.
    """
    from hpbandster.core.result import logged_results_to_HBS_result

    if not has_results(out_dir):
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


def next_iteration_offset(out_dir):
    """First free hpbandster iteration number (int) in out_dir's configs.json (0 when empty)."""
    fn = Path(out_dir) / CONFIGS_FILE
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

    Args:
        directory: str, the tuning directory.
        offset: int, added to each config id's iteration number.
        total: int or None, planned evaluations (shown in the progress lines).
        progress: bool, print the progress lines.
    """

    def __init__(self, directory, offset=0, total=None, progress=True):
        self.config_fn = os.path.join(directory, CONFIGS_FILE)
        self.results_fn = os.path.join(directory, RESULTS_FILE)
        for fn in (self.config_fn, self.results_fn):
            open(fn, "a").close()
        self.offset, self.total, self.progress = int(offset), total, progress
        self.config_ids = set()
        self.n_done, self.best, self.t0 = 0, float("inf"), time.monotonic()
        self.lock = threading.Lock()

    def shift(self, config_id):
        """Config id as logged: [iteration + offset, bracket, index] ints."""
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
