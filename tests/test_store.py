"""Append-only records survive crashes: torn tails are cut, corruption is named, settings are guarded."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mathusereval.errors import ConfigError, DataError
from mathusereval.records import Generation, GenerationParams, RunManifest
from mathusereval.store import RunStore


def _manifest(**changes: object) -> RunManifest:
    base = RunManifest(
        run_id="m/t",
        task="t",
        task_version="1",
        model="m",
        backend="openai",
        backend_config={},
        params=GenerationParams().to_json(),
        data_sha256="d",
        prompt_sha256="p",
        fingerprint="f1",
        mathusereval_version="0",
        started_at="now",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _gen(i: int, error: str | None = None) -> Generation:
    return Generation(sample_id=str(i), n_index=0, model="m", text=f"answer {i}", error=error)


def test_records_are_appended_and_latest_wins(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    store.open()
    store.add_generation(_gen(1, error="HTTP 500"))
    store.add_generation(_gen(2))
    store.add_generation(_gen(1))
    store.close()
    gens = RunStore(tmp_path / "run").generations()
    assert gens[("1", 0)].ok and gens[("2", 0)].ok and len(gens) == 2


def test_torn_last_line_is_cut_and_appending_continues(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = RunStore(tmp_path / "run")
    store.open()
    store.add_generation(_gen(1))
    store.close()
    path = tmp_path / "run" / "generations.jsonl"
    with path.open("a") as fh:
        fh.write('{"sample_id": "2", "n_ind')  # what a kill -9 in the middle of a write would leave
    store.open()
    store.add_generation(_gen(3))
    store.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and '"3"' in lines[1]
    assert set(RunStore(tmp_path / "run").generations()) == {("1", 0), ("3", 0)}
    assert "torn last line" in capsys.readouterr().err


def test_corrupt_middle_line_names_file_and_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    good = '{"sample_id": "1", "n_index": 0, "model": "m", "text": "x"}\n'
    (run / "generations.jsonl").write_text(good + "garbage\n" + good)
    with pytest.raises(DataError, match=r"generations\.jsonl:2: corrupt record"):
        RunStore(run).generations()


def test_resume_with_different_settings_is_refused_and_nothing_overwritten(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    store.write_manifest(_manifest())
    before = store.manifest_path.read_bytes()
    with pytest.raises(ConfigError, match=r"different settings \(params.n: 1 -> 2 changed\)"):
        store.check_compatible(_manifest(fingerprint="f2", params={**GenerationParams().to_json(), "n": 2}))
    assert store.manifest_path.read_bytes() == before
    assert store.check_compatible(_manifest()) == _manifest()
