"""Run directories on disk: append-only JSONL records (`jsonl`), the run store with its one locked writer
(`run_store`), and the checks that show a run was edited after it was written (`integrity`)."""

from .run_store import MANIFEST, RECORD_FILES, SUMMARY, RunStore, run_directory

__all__ = ["MANIFEST", "RECORD_FILES", "SUMMARY", "RunStore", "run_directory"]
