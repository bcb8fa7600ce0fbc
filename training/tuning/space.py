"""The BOHB search space of iSRCNN (thesis Table 5.3) as a ConfigSpace, in two selectable groups.

- ``local`` (architecture): ``n0`` in {40..60} outer channels, ``ni`` in {6..20} inner channels, ``m`` in {1..10}
  mapping layers.
- ``global`` (training): ``lr`` in [1e-4, 1e-1] (log), ``batch_size`` in {16, 32, 64, 128, 256}, ``beta1`` in
  [0.5, 0.999], ``beta2`` in [0.9, 0.9999] (Adam needs beta < 1; the thesis writes the open interval [0.5, 1)).

Hyperparameter names equal the keys of the training config (``training.train.train(config=...)``), so a sampled
configuration merged over a base config is directly a training config (:func:`to_train_config`). Parameters of a
group that is not searched keep the base config's value (thesis defaults unless the user gives a base config).
"""
import ConfigSpace as CS

from galsr.training.tuning.pyro_compat import to_builtins

#: Search groups: group name -> hyperparameter names (in the thesis's order).
GROUPS = {"local": ("n0", "ni", "m"), "global": ("lr", "batch_size", "beta1", "beta2")}
#: Batch sizes searched (powers of two, as in the thesis).
BATCH_SIZES = (16, 32, 64, 128, 256)
#: Thesis-best values (chapter 5), the defaults of the training loop; used for parameters not searched.
THESIS_BEST = {"model": "isrcnn", "n0": 60, "ni": 16, "m": 8, "lr": 0.0035, "batch_size": 32, "beta1": 0.957,
               "beta2": 0.929}
#: Hyperparameters searched on a log scale (plots and correlations use log10 of these).
LOG_SCALE = ("lr",)


def _hyperparameter(name):
    """One ConfigSpace hyperparameter of Table 5.3, its default the thesis-best value."""
    d = THESIS_BEST[name]
    if name == "n0":
        return CS.UniformIntegerHyperparameter("n0", 40, 60, default_value=d)
    if name == "ni":
        return CS.UniformIntegerHyperparameter("ni", 6, 20, default_value=d)
    if name == "m":
        return CS.UniformIntegerHyperparameter("m", 1, 10, default_value=d)
    if name == "lr":
        return CS.UniformFloatHyperparameter("lr", 1e-4, 1e-1, log=True, default_value=d)
    if name == "batch_size":
        return CS.CategoricalHyperparameter("batch_size", list(BATCH_SIZES), default_value=d)
    if name == "beta1":
        return CS.UniformFloatHyperparameter("beta1", 0.5, 0.999, default_value=d)
    if name == "beta2":
        return CS.UniformFloatHyperparameter("beta2", 0.9, 0.9999, default_value=d)
    raise ValueError(f"unknown hyperparameter {name!r}")


def parse_groups(groups):
    """Normalise a group selection to a sorted-by-definition tuple.

    Args:
        groups: "all", a comma-separated string ("local,global") or an iterable of names from :data:`GROUPS`.

    Returns:
        tuple of group names. Raises ValueError naming the bad group (expected one of GROUPS).
    """
    if isinstance(groups, str):
        groups = list(GROUPS) if groups.strip() == "all" else [g.strip() for g in groups.split(",") if g.strip()]
    groups = list(groups)
    bad = [g for g in groups if g not in GROUPS]
    if bad or not groups:
        raise ValueError(f"groups: expected a non-empty selection of {sorted(GROUPS)} or 'all', got {groups!r}")
    return tuple(g for g in GROUPS if g in groups)


def hyperparameter_names(groups="all"):
    """Names of the searched hyperparameters of ``groups`` (tuple of str, Table 5.3 order)."""
    return tuple(n for g in parse_groups(groups) for n in GROUPS[g])


def build_config_space(groups="all", seed=0):
    """The ConfigSpace of the selected groups.

    Args:
        groups: see :func:`parse_groups`.
        seed: int, seeds the space's own sampler (random configurations of BOHB/random search).

    Returns:
        ConfigSpace.ConfigurationSpace.
    """
    cs = CS.ConfigurationSpace(seed=int(seed))
    cs.add([_hyperparameter(n) for n in hyperparameter_names(groups)])
    return cs


def to_train_config(config, base_config=None, epochs=None):
    """Merge a sampled configuration over a base training config.

    Args:
        config: dict name -> value from the search space (numpy scalars allowed).
        base_config: dict of training config keys (None: the thesis-best values of :data:`THESIS_BEST`).
        epochs: int or None, written as ``"epochs"`` when given.

    Returns:
        dict of builtin Python values accepted by ``training.train.train(config=...)`` and ``galsr train --config``.
    """
    merged = dict(THESIS_BEST)
    merged.update(base_config or {})
    merged.update(to_builtins(dict(config)))
    for key in ("n0", "ni", "m", "batch_size"):
        merged[key] = int(merged[key])
    if epochs is not None:
        merged["epochs"] = int(epochs)
    return merged
