"""galsr.training.tuning: BOHB hyperparameter search with hpbandster (search space, workers, driver, report)."""
