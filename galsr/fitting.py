"""Nested-sampling fit of the 18 parameters with dynesty; returns the result, writes nothing but its checkpoint.

``fit(galaxy, ...)`` runs dynesty's static NestedSampler (multi-ellipsoid bounds, random-walk proposals) on the prior
of galsr.prior and the likelihood of galsr.likelihood, with the forward model passed beside the data. With
``workers > 1`` it uses ``dynesty.pool.Pool``, which ships the data and the forward model to each worker once (not
on every call), with ``queue_size = workers``. With ``checkpoint_dir`` the sampler is saved there every
``checkpoint_every`` seconds and ``resume=True`` continues from it, only from a checkpoint galsr signed for a run
of the same identity (galsr.fit_checkpoint). Outputs (tables, files, figures) are made from
the returned :class:`FitResult` by galsr.fit_results and galsr.fit_outputs, as dynesty's plotting and utilities
consume its Results.
"""
import os
from dataclasses import dataclass

import numpy as np

from galsr.fit_checkpoint import fit_checkpoint, run_identity
from galsr.forward_models import make_forward
from galsr.likelihood import FitData, log_likelihood_of_parameters
from galsr.prior import Prior, prior_transform
from galsr.simulator import ParameterSpace
from galsr.simulator.limits import cap_workers

#: Sampler defaults that converge, chosen by measurement (benchmarks/sampler_study.py, table in docs/fitting.md):
#: rslice with dynesty's default 3 + ndim slices (walks=None); nlive = ``nlive_per_dim`` x the number of free
#: parameters, at least ``nlive_min`` (10 x ndim for 6 free, the FAQ's guidance), unless nlive is given.
DEFAULTS = dict(nlive=None, nlive_per_dim=5, nlive_min=60, dlogz=0.5, bound="multi", sample="rslice", walks=None,
                seed=0)
#: A quick look (``quick=True``, CLI --quick): the earlier defaults, fast and not converged in 18 dimensions.
QUICK = dict(nlive=60, sample="rwalk", walks=15)


@dataclass
class FitResult:
    """What a fit produced.

    Attributes:
        results: dynesty Results (samples of the free parameters, log-weights, ln Z, ...).
        galaxy: galsr.Galaxy that was fitted; forward: the forward model; prior: galsr.prior.Prior; data: FitData.
        settings: dict of the sampler settings used (nlive, dlogz, bound, sample, walks, seed).
        samples: (N, 18) float64 weighted samples of all parameters; weights: (N,) float64, summing to 1.
        equal_samples: (M, 18) float64 equal-weight resampling; map: (18,) float64 maximum a posteriori sample.
        summary: dict (per parameter median, p16, p84, MAP, unit, truth, fixed; ln Z and its error; counts).
        run: dict (settings, workers, forward model, wall time [s], likelihood calls, calls per second, versions).
        emulator_result: the emulator-only FitResult when this one is its simulator-exact finish (galsr.finish),
            else None.
    """

    results: object
    galaxy: object
    forward: object
    prior: Prior
    data: FitData
    settings: dict
    samples: np.ndarray
    weights: np.ndarray
    equal_samples: np.ndarray
    map: np.ndarray
    summary: dict
    run: dict
    emulator_result: object = None


def resolve_settings(nlive=None, dlogz=None, seed=None, bound=None, sample=None, walks=None, quick=False,
                     ndim=None):
    """The sampler settings (dict): DEFAULTS (with ``quick``: QUICK over them) overridden by the values given, nlive
    from ``ndim`` x nlive_per_dim when not set, ``quick`` recorded; ValueError for impossible ones."""
    settings = dict(DEFAULTS, **(QUICK if quick else {}), quick=bool(quick))
    for key, value in dict(nlive=nlive, dlogz=dlogz, seed=seed, bound=bound, sample=sample, walks=walks).items():
        if value is not None:
            settings[key] = value
    if settings["nlive"] is None:
        settings["nlive"] = max(int(settings["nlive_min"]), int(settings["nlive_per_dim"]) * int(ndim or 18))
    if int(settings["nlive"]) < 10:
        raise ValueError(f"nlive must be >= 10, got {settings['nlive']}")
    return settings


def fit(galaxy, forward="emulator", emulator=None, nlive=None, workers=1, free=None, fixed=None, dlogz=None,
        seed=None, maxcall=None, checkpoint_dir=None, checkpoint_every=30.0, resume=False, progress=False,
        bound=None, sample=None, walks=None, quick=False):
    """Fit ``galaxy`` (galsr.Galaxy or a FITS path) by nested sampling; returns a :class:`FitResult`.

    forward : "emulator" (``emulator``: Emulator, path or None = shipped default), "simulator" (the full
        simulation on the galaxy's own grid), or a ForwardModel.
    nlive, dlogz, bound, sample, walks, seed : dynesty settings (defaults in DEFAULTS; walks is the number of steps
        of "rwalk" and of "rslice" slices). quick : the QUICK settings (a quick look, recorded in the summary).
    workers : int >= 1, processes evaluating the likelihood (dynesty.pool.Pool when > 1); capped at the
        machine's cores with a galsr.simulator.limits.GalsrNote warning.
    free / fixed : names to fit / {name: value} to hold fixed (default: all free).
    maxcall : stop after this many likelihood calls (None: run to ``dlogz``).
    checkpoint_dir : folder for dynesty's checkpoint (None: no checkpoint), locked while the fit runs; resume :
        continue from it, after checking that galsr wrote it and that this run has its identity
        (galsr.fit_checkpoint; ValueError naming what differs).
    progress : dynesty's progress line on stderr.
    """
    import dynesty

    from galsr.fit_results import posterior_samples, run_record, summarise
    from galsr.galaxy import read_galaxy

    if isinstance(galaxy, (str, os.PathLike)):
        galaxy = read_galaxy(galaxy)
    workers = cap_workers(workers)
    model = make_forward(galaxy, forward, emulator)
    prior = Prior(ParameterSpace(redshift=galaxy.redshift), fixed=fixed, free=free)
    settings = resolve_settings(nlive, dlogz, seed, bound, sample, walks, quick, prior.ndim)
    data = FitData(galaxy)
    model.set_num_threads(1)  # one core per worker; forked workers inherit it
    run_kwargs = dict(dlogz=float(settings["dlogz"]), maxcall=maxcall, print_progress=bool(progress))
    sampler_kwargs = dict(nlive=int(settings["nlive"]), bound=settings["bound"], sample=settings["sample"],
                          rstate=np.random.default_rng(int(settings["seed"])))
    if settings["walks"] is not None:  # else dynesty's default for the method
        sampler_kwargs["slices" if settings["sample"] in ("slice", "rslice") else "walks"] = int(settings["walks"])
    logl_args = (prior, data, model)
    with fit_checkpoint(checkpoint_dir, run_identity(galaxy, model, prior, settings), resume) as ckpt:
        if ckpt.path:
            run_kwargs.update(checkpoint_file=ckpt.path, checkpoint_every=float(checkpoint_every))
        if workers > 1:
            with dynesty.pool.Pool(int(workers), log_likelihood_of_parameters, prior_transform, logl_args=logl_args,
                                   ptform_args=(prior,)) as pool:
                if resume:
                    sampler = ckpt.restore(pool=pool)
                    sampler.run_nested(resume=True, **run_kwargs)
                else:
                    sampler = ckpt.attach(dynesty.NestedSampler(pool.loglike, pool.prior_transform, prior.ndim,
                                                                pool=pool, queue_size=int(workers), **sampler_kwargs))
                    sampler.run_nested(**run_kwargs)
        else:
            if resume:
                sampler = ckpt.restore()
                sampler.run_nested(resume=True, **run_kwargs)
            else:
                sampler = ckpt.attach(dynesty.NestedSampler(log_likelihood_of_parameters, prior_transform,
                                                            prior.ndim, logl_args=logl_args, ptform_args=(prior,),
                                                            **sampler_kwargs))
                sampler.run_nested(**run_kwargs)
        wall = ckpt.wall_time_s()  # all sessions: honest calls per second after a resume
    results = sampler.results
    full, weights, equal, best = posterior_samples(results, prior, int(settings["seed"]))
    summary = summarise(results, full, weights, best, prior, galaxy.truth, model.name)
    summary["quick_look"] = bool(settings["quick"])
    run = run_record(galaxy, model, prior, data, results, settings, workers, wall, resume, best)
    return FitResult(results, galaxy, model, prior, data, settings, full, weights, equal, best, summary, run)
