"""The write side: one run of a model on a task (`pipeline`), its grading phases (`grading`, `judging`),
the one post-processing layer of every backend (`postprocess`), budgets, progress, and the whole
invocation (`session`: evaluate, grade; `importing`)."""
