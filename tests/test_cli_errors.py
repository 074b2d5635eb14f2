"""Bad input: one clear line on stderr, exit code 2, and nothing stored before is lost."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from .conftest import free_port, run_cli


def _assert_clean_error(result: object, *fragments: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)  # type: ignore[attr-defined]
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("mue-eval: error: "), result.stderr  # type: ignore[attr-defined]
    for fragment in fragments:
        assert fragment in lines[0]


def test_unknown_task(tmp_path: Path) -> None:
    _assert_clean_error(run_cli("--tasks", "demo,nosuch", cwd=tmp_path), "unknown task 'nosuch'", "gsm8k")
    assert not (tmp_path / "results").exists()


def test_missing_model_file(tmp_path: Path) -> None:
    _assert_clean_error(
        run_cli("--model", str(tmp_path / "absent.gguf"), cwd=tmp_path), "absent.gguf", "does not exist"
    )
    _assert_clean_error(run_cli("--model", "no/such/model", cwd=tmp_path), "no such file or directory")


def test_model_directory_without_vllm_says_how_to_install(tmp_path: Path) -> None:
    model = tmp_path / "hf-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    _assert_clean_error(run_cli("--model", str(model), cwd=tmp_path), "vLLM", "pip install")


def test_unreadable_or_missing_data_dir(tmp_path: Path) -> None:
    _assert_clean_error(
        run_cli("--tasks", "gsm8k", "--data-dir", str(tmp_path / "nope"), cwd=tmp_path),
        "data directory",
        "does not exist",
    )
    _assert_clean_error(run_cli("--tasks", "gsm8k", cwd=tmp_path), "--data-dir", "MUE_DATA_DIR", "gsm8k/test.jsonl")
    if os.geteuid() != 0:  # root reads everything; the permission case only exists for other users
        locked = tmp_path / "locked"
        locked.mkdir(mode=0)
        _assert_clean_error(run_cli("--tasks", "gsm8k", "--data-dir", str(locked), cwd=tmp_path), "not readable")


def test_malformed_jsonl_line_names_file_and_line(tmp_path: Path) -> None:
    data = tmp_path / "data" / "gsm8k"
    data.mkdir(parents=True)
    good = '{"question": "1+1?", "answer": "#### 2"}\n'
    (data / "test.jsonl").write_text(good + good + '{"question": "broken"\n')
    _assert_clean_error(
        run_cli("--tasks", "gsm8k", "--data-dir", str(tmp_path / "data"), cwd=tmp_path),
        "test.jsonl:3",
        "not valid JSON",
    )
    (data / "test.jsonl").write_text(good + '{"question": "no answer"}\n')
    _assert_clean_error(
        run_cli("--tasks", "gsm8k", "--data-dir", str(tmp_path / "data"), cwd=tmp_path),
        "test.jsonl:2",
        "missing required field 'answer'",
    )


def test_unreachable_endpoint_fails_fast_without_writing(tmp_path: Path) -> None:
    start = time.monotonic()
    result = run_cli("--base-url", f"http://127.0.0.1:{free_port()}/v1", "--model", "m", cwd=tmp_path)
    _assert_clean_error(result, "cannot reach http://127.0.0.1:")
    assert time.monotonic() - start < 30
    assert not (tmp_path / "results").exists()


def test_changed_settings_do_not_overwrite_a_stored_run(tmp_path: Path) -> None:
    from .fault_server import FaultServer

    with FaultServer() as server:
        args = ["--base-url", server.url, "--model", "fault-model", "--limit", "2", "--quiet"]
        assert run_cli(*args, cwd=tmp_path).returncode == 0
        run = tmp_path / "results" / "fault-model" / "demo"
        # .lock names its last holder (pid, host), so each process that takes the lock rewrites it
        before = {p.name: p.read_bytes() for p in run.iterdir() if p.name != ".lock"}
        _assert_clean_error(run_cli(*args, "--max-tokens", "7", cwd=tmp_path), "different settings", "params")
        assert {p.name: p.read_bytes() for p in run.iterdir() if p.name != ".lock"} == before


@pytest.mark.parametrize("flag", ["--limit", "--samples", "--max-tokens"])
def test_non_positive_numbers_are_rejected(tmp_path: Path, flag: str) -> None:
    _assert_clean_error(run_cli(flag, "0", cwd=tmp_path), flag, "must be positive")


def test_help_is_fast_and_imports_no_engine(tmp_path: Path) -> None:
    start = time.monotonic()
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0 and "mue-eval tasks" in result.stdout
    assert time.monotonic() - start < 2.0
    code = (
        "import sys; from mathusereval.cli.run import parser; parser().format_help(); "
        "print(sorted(m for m in ('llama_cpp', 'vllm', 'torch', 'lm_eval', 'datasets', 'rich', 'httpx') "
        "if m in sys.modules))"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
