"""The plugin API: what a task, grader, backend or renderer is (`contracts`, `task`), where they are found by
name (`registry`, `include`), and the aggregation helpers tasks use (`metrics`). Public names are
re-exported by `mathusereval`."""
