"""What a new user meets on the way (issue 36): Chinese model names in plots, ``agreement`` and ``tasks`` without
their directories, ``mue-eval models``, a busy server's start-up probe and a model the server does not list."""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from pathlib import Path

from mathusereval.records import MetricValue

from .conftest import run_cli
from .loopback import JsonHandler, LoopbackServer


def test_chinese_model_names_draw_with_an_installed_cjk_font() -> None:
    """Before, every CJK glyph of '通义千问2.5' was missing from DejaVu Sans (empty boxes) although
    scripts/browser.sh installs WenQuanYi Zen Hei."""
    from mathusereval.leaderboard.plots import font_families, task_plots
    from mathusereval.leaderboard.tables import Table

    assert any("WenQuanYi" in family for family in font_families()), font_families()
    columns = ["accuracy/subject=algebra", "accuracy/subject=geometry"]
    table = Table(columns, [("通义千问2.5-检查点", [MetricValue(c, 0.5, 10, 0.1) for c in columns])])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plots = task_plots("math", table)
    assert plots and plots[0].png[:4] == b"\x89PNG"
    assert not [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_agreement_writes_files_only_with_out(tmp_path: Path) -> None:
    from .test_compare import write_run

    run = write_run(tmp_path / "results" / "m" / "gsm8k", {"a": 1.0, "b": 0.0}, model="m")
    result = run_cli("agreement", f"{run}:answer", f"{run}:answer", cwd=tmp_path)
    assert result.returncode == 0 and "kappa" in result.stdout.lower(), result.stderr
    assert not (tmp_path / "agreement").exists()  # before: agreement/ in the current directory


def test_tasks_without_data_says_where_data_is_looked_for_in_one_line(tmp_path: Path) -> None:
    result = run_cli("tasks", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("unavailable:")]
    assert len(lines) == 1, result.stdout  # before: one download error per task (33 lines)
    assert "--data-dir DIR, then $MUE_DATA_DIR, then the official downloads" in lines[0]


def test_models_lists_the_embedded_model_and_the_engines(tmp_path: Path) -> None:
    result = run_cli("models", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "smollm2-135m-instruct:" in result.stdout and "SmolLM2-135M-Instruct.Q4_1.gguf" in result.stdout
    engines = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[3:] if line.startswith("  ")}
    assert engines["llamacpp"] == "installed" and engines["openai"] == "installed" and "vllm" in engines


class SlowModelsServer(LoopbackServer):
    """Lists one model after `delay` seconds (a server busy loading), answers every chat with a boxed 4."""

    def __init__(self, delay: float) -> None:
        class Handler(JsonHandler):
            def do_GET(self) -> None:
                time.sleep(delay)
                with contextlib.suppress(BrokenPipeError):  # the impatient client gave up first, as wanted
                    self.send_json(200, b'{"data": [{"id": "other-model"}]}')

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                reply = {"choices": [{"message": {"content": "\\boxed{4}"}, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 3, "completion_tokens": 2}}  # fmt: skip
                self.send_json(200, json.dumps(reply).encode())

        super().__init__(Handler)


def test_a_busy_servers_probe_names_timeout_and_an_unlisted_model_is_warned(tmp_path: Path) -> None:
    with SlowModelsServer(delay=2.0) as server:
        common = ("--base-url", server.url, "--model", "gpt-4o", "--tasks", "demo", "--limit", "1", "--quiet")
        busy = run_cli(*common, "--timeout", "1", cwd=tmp_path)
        assert busy.returncode == 2 and "no answer to /models within 1 s" in busy.stderr, busy.stderr
        assert "--timeout S waits longer" in busy.stderr
        patient = run_cli(*common, "--timeout", "10", cwd=tmp_path)
    assert patient.returncode == 0, patient.stderr
    assert "--model 'gpt-4o' is not among the models the server lists (other-model)" in patient.stderr
