"""Nested-sampling fit of the 18 parameters with dynesty: process pool, checkpoints, resume, outputs.

``fit(galaxy, ...)`` runs dynesty's static NestedSampler (multi-ellipsoid bounds, random-walk proposals) with the
prior and likelihood of galsr.posterior. With ``workers > 1`` it uses ``dynesty.pool.Pool``, which ships the data
and the forward model to each worker once (not on every call), with ``queue_size = workers``. Every
``checkpoint_every`` seconds the sampler is saved to ``out_dir/checkpoint.save``; ``resume=True`` restores it (with a
fresh pool) and continues. The outputs are written by galsr.fit_report.
"""
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from galsr.simulator import ParameterSpace

from galsr.forward_models import make_forward
from galsr.posterior import LikelihoodData, Prior, log_likelihood, prior_transform

CHECKPOINT = "checkpoint.save"
#: Defaults of the quick start: a complete 18-parameter fit of the example in a few minutes on 2 cores.
DEFAULTS = dict(nlive=60, dlogz=0.5, bound="multi", sample="rwalk", walks=15, seed=0)


@dataclass
class FitResult:
    """What a fit produced: the dynesty results object, the parameter summary and the run record."""

    results: object
    summary: dict
    run: dict
    out_dir: str


def _prepare_out_dir(out_dir, resume, overwrite):
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not (resume or overwrite):
        raise ValueError(f"output directory {out_dir} is not empty; pass --resume to continue its run or "
                         f"--overwrite to replace its files")
    if resume and not os.path.exists(os.path.join(out_dir, CHECKPOINT)):
        raise ValueError(f"--resume: no checkpoint {os.path.join(out_dir, CHECKPOINT)} to continue from")
    os.makedirs(out_dir, exist_ok=True)


def fit(galaxy, forward="emulator", emulator=None, nlive=None, workers=1, out_dir="fit", resume=False,
        overwrite=False, free=None, fixed=None, dlogz=None, seed=None, maxcall=None, checkpoint_every=30.0,
        progress=True, bound=None, sample=None, walks=None):
    """Fit ``galaxy`` (galsr.Galaxy or a FITS path) and write the outputs to ``out_dir``.

    forward : "emulator" (``emulator``: Emulator, path or None = shipped default) or "simulator" (the full
        simulation on the galaxy's own grid), or a ForwardModel.
    nlive, dlogz, bound, sample, walks, seed : dynesty settings (defaults in DEFAULTS).
    workers : processes evaluating the likelihood (dynesty.pool.Pool when > 1).
    free / fixed : names to fit / {name: value} to hold fixed (default: all free).
    resume : continue from ``out_dir/checkpoint.save``; overwrite : allow a non-empty ``out_dir``.
    maxcall : stop after this many likelihood calls (None: run to ``dlogz``).
    Returns a FitResult.
    """
    import dynesty

    from galsr.fit_report import write_outputs
    from galsr.galaxy import read_galaxy

    if isinstance(galaxy, (str, os.PathLike)):
        galaxy = read_galaxy(galaxy)
    settings = dict(DEFAULTS)
    for key, value in dict(nlive=nlive, dlogz=dlogz, seed=seed, bound=bound, sample=sample, walks=walks).items():
        if value is not None:
            settings[key] = value
    if int(settings["nlive"]) < 10:
        raise ValueError(f"nlive must be >= 10, got {settings['nlive']}")
    if int(workers) < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    out_dir = os.fspath(out_dir)
    model = make_forward(galaxy, forward, emulator)
    prior = Prior(ParameterSpace(redshift=galaxy.redshift), fixed=fixed, free=free)
    data = LikelihoodData(galaxy, model)
    _prepare_out_dir(out_dir, resume, overwrite)
    model.set_num_threads(1)  # one core per worker; forked workers inherit it
    ckpt = os.path.join(out_dir, CHECKPOINT)
    run_kwargs = dict(dlogz=float(settings["dlogz"]), maxcall=maxcall, print_progress=progress,
                      checkpoint_file=ckpt, checkpoint_every=float(checkpoint_every))
    sampler_kwargs = dict(nlive=int(settings["nlive"]), bound=settings["bound"], sample=settings["sample"],
                          walks=int(settings["walks"]), rstate=np.random.default_rng(int(settings["seed"])))
    t0 = time.time()
    if workers > 1:
        with dynesty.pool.Pool(int(workers), log_likelihood, prior_transform, logl_args=(prior, data),
                               ptform_args=(prior,)) as pool:
            if resume:
                sampler = dynesty.NestedSampler.restore(ckpt, pool=pool)
                sampler.run_nested(resume=True, **run_kwargs)
            else:
                sampler = dynesty.NestedSampler(pool.loglike, pool.prior_transform, prior.ndim, pool=pool,
                                                queue_size=int(workers), **sampler_kwargs)
                sampler.run_nested(**run_kwargs)
    else:
        if resume:
            sampler = dynesty.NestedSampler.restore(ckpt)
            sampler.run_nested(resume=True, **run_kwargs)
        else:
            sampler = dynesty.NestedSampler(log_likelihood, prior_transform, prior.ndim, logl_args=(prior, data),
                                            ptform_args=(prior,), **sampler_kwargs)
            sampler.run_nested(**run_kwargs)
    if progress:
        sys.stderr.write("\n")
    wall = time.time() - t0
    results = sampler.results
    summary, run = write_outputs(out_dir, galaxy, model, prior, data, results, settings, workers, wall, resume)
    return FitResult(results, summary, run, out_dir)
