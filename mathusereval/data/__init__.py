"""Benchmark data: local files with file:line errors (`files`), pinned official downloads (`sources`) and the
stable partition of a task into shards (`shards`)."""
