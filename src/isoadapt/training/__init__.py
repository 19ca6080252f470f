"""One head trained over cached vectors: the loop, the `train` and `evaluate` commands, the settings
(`TrainConfig`), checkpoints, selection on validation, trackers, collapse checks and the run folder."""
