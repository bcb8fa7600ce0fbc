"""galsr.training.tuning: BOHB hyperparameter search with hpbandster, one job a module.

- ``driver``: ``tune()`` -- one session, from the settings to the report.
- ``settings``: ``TuneSettings``, the checked settings of a session.
- ``space``: the search space (thesis Table 5.3) and training configs of samples.
- ``objective``: the loss BOHB minimises (validation L1, optional latency penalty).
- ``latency``: latency [ms] and parameter count of candidate networks.
- ``dataset``: dataset checks and fingerprint.
- ``optimizer``: budget ladder, BOHB / random search with time-outs, running the master.
- ``nameserver``: the run's Pyro4 nameserver: start, find, wait, publish and fetch run settings.
- ``worker``: the hpbandster worker that trains configurations (``serve``: join a run).
- ``local_workers``: the driver's local worker processes.
- ``results``: hpbandster's json result logs: appending, reading, warm start.
- ``record``: the directory's ``tune_settings.json`` (objective settings, sessions, resume checks).
- ``report``: trajectory, importance, parallel coordinates, Pareto front.
- ``pyro_compat``: numpy scalars through Pyro4/serpent and JSON.
"""
