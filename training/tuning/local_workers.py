"""Local worker processes of a tuning run: spawned processes that join the run like any other machine would
(``worker.serve`` through the nameserver), started and reaped by the driver."""
import contextlib
import logging
import multiprocessing

from galsr.training.tuning.worker import serve

def _local_worker_main(nameserver, port, run_id, worker_id, timeout, num_threads):
    """Entry point of a local worker process started by the driver (spawn context)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    serve(nameserver, run_id, port=port, host="127.0.0.1" if nameserver.startswith("127.") else None,
          timeout=timeout, worker_id=worker_id, num_threads=num_threads)


def start_local_workers(n, ns_host, ns_port, run_id, timeout, num_threads):
    """Start ``n`` local worker processes (spawn) serving run ``run_id`` of the nameserver at ns_host:ns_port.

    Args:
        n: int >= 0, processes.
        timeout: float [s], each worker's nameserver time-out (``worker.serve``).
        num_threads: int or None, torch threads per worker.

    Returns:
        list of started multiprocessing.Process (daemonic).
    """
    ctx = multiprocessing.get_context("spawn")
    procs = []
    for i in range(n):
        p = ctx.Process(target=_local_worker_main, name=f"galsr-tune-worker-{i}",
                        args=(ns_host, ns_port, run_id, i, timeout, num_threads), daemon=True)
        p.start()
        procs.append(p)
    return procs


def stop_local_workers(procs, grace=10.0):
    """Wait up to ``grace`` [s] per process for it to exit, then terminate it (and wait 5 s more)."""
    for p in procs:
        p.join(timeout=grace)
        if p.exitcode is None:
            p.terminate()
            p.join(timeout=5)


@contextlib.contextmanager
def local_workers(n, ns_host, ns_port, run_id, timeout, num_threads):
    """:func:`start_local_workers` for the block (yields the Process list), :func:`stop_local_workers` after it."""
    procs = []
    try:
        procs = start_local_workers(n, ns_host, ns_port, run_id, timeout, num_threads)
        yield procs
    finally:
        stop_local_workers(procs)
