"""The one place where numpy scalars meet Pyro4/serpent and JSON (ConfigSpace 1.x + hpbandster).

ConfigSpace 1.x hands out configurations whose values are numpy scalars (``numpy.int64`` for categorical integer
choices such as the batch size, ``numpy.str_`` for string choices, sometimes ``numpy.float64``). hpbandster ships
every configuration and result through Pyro4, whose default serializer is serpent, and serpent

- refuses ``numpy.int64`` / ``numpy.str_`` / ``numpy.bool_`` ("don't know how to serialize class numpy.int64"), and
- silently writes ``numpy.float64(0.5)`` as the text ``np.float64(0.5)`` under numpy 2 (its repr), which the other
  side cannot parse back.

:func:`register_numpy_serializers` registers a serpent class serializer for every numpy scalar (``numpy.generic``)
and array that writes the equivalent builtin value instead; it must run in every process that talks Pyro4 (the
tuning driver and each worker call it). :func:`to_builtins` is the same conversion for JSON files (hpbandster's
json result logger would otherwise fail on ``numpy.int64``).
"""
import threading

import numpy as np

_LOCK = threading.Lock()
_REGISTERED = False


def to_builtins(obj):
    """Recursively convert numpy scalars/arrays inside dicts, lists and tuples to builtin Python values.

    Args:
        obj: any tree of dict / list / tuple / numpy scalar / numpy array / builtin values.

    Returns:
        The same tree with ``numpy.generic`` replaced by ``.item()`` and arrays by nested lists (tuples stay
        tuples, dict keys are converted too).
    """
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, dict):
        return {to_builtins(k): to_builtins(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        converted = [to_builtins(v) for v in obj]
        return tuple(converted) if isinstance(obj, tuple) else converted
    return obj


def _serialize_numpy(obj, serializer, out, level):
    """serpent class serializer: write a numpy scalar/array as its builtin equivalent."""
    serializer._serialize(to_builtins(obj), out, level)


def register_numpy_serializers():
    """Make Pyro4's serpent serializer send numpy scalars and arrays as builtin values (idempotent).

    Call once per process before any Pyro4 call (nameserver, dispatcher, worker). Returns None.
    """
    global _REGISTERED
    with _LOCK:
        if _REGISTERED:
            return
        import serpent

        serpent.register_class(np.generic, _serialize_numpy)
        serpent.register_class(np.ndarray, _serialize_numpy)
        _REGISTERED = True
