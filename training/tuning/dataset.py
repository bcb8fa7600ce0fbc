"""The tuning dataset: refusing unusable files and identifying a file across machines."""
import numpy as np


def check_dataset(path):
    """Refuse a missing, incomplete or wrongly laid out dataset, or one without training or validation rows.

    Args:
        path: str or Path of an HDF5 dataset (``galsr generate``).

    Returns:
        str path. Raises ValueError naming the file.
    """
    from galsr.simulator.dataset_file import open_dataset_file

    path = str(path)
    with open_dataset_file(path, hr_factor=4) as f:  # raises ValueError for missing / incomplete files and wrong layouts
        split = f["split"][()]
    n_train, n_val = int(np.sum(split == 0)), int(np.sum(split == 1))
    if n_train < 1 or n_val < 1:
        raise ValueError(f"dataset {path!r}: needs training and validation rows, got {n_train} and {n_val}")
    return path


def dataset_fingerprint(path):
    """Identity of a dataset file: {"fingerprint": str, sha256 of params/split/seed (``galsr.training.data``),
    "lr_shape": [channels, n_lr, n_lr] ints}."""
    from galsr.simulator.dataset_file import open_dataset_file
    from galsr.training.data import fingerprint

    with open_dataset_file(path, hr_factor=4) as f:
        return {"fingerprint": fingerprint(f), "lr_shape": [int(d) for d in f["lr"].shape[1:]]}
