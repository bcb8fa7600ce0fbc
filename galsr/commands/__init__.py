"""Sub-commands of the ``galsr`` CLI, one module each (see ``galsr.cli``)."""
