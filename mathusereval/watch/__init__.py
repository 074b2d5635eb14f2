"""``mue-eval watch``: checkpoints found as a training run writes them (`checkpoints`), and the watcher's
state in the results tree (`state`)."""
