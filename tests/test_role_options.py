"""Model roles declared once (`mathusereval.run.roles.RoleOptions`): every flag maps to a field and every field
has its flag, each role uses its own key, concurrency and price, and one budget caps every LLM grader."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

from mathusereval.backends.options import BatchSettings
from mathusereval.cli.run import parser
from mathusereval.records import Usage
from mathusereval.run.judging import shared_budgets
from mathusereval.run.role_settings import GradingOptions, judge_settings
from mathusereval.run.roles import GRADING_ROLES, MODEL_ROLE, RoleOptions, flag_name

from .conftest import run_cli
from .judge_server import ScriptedServer
from .test_verifier import ANSWERS, TASK, VERDICTS


def _flags() -> set[str]:
    return {opt for action in parser()._actions for opt in action.option_strings}


def test_every_role_field_has_its_flag_and_every_role_flag_a_field() -> None:
    flags = _flags()
    for role in (*GRADING_ROLES, MODEL_ROLE):
        for field in RoleOptions.flag_fields(role):
            assert flag_name(role, field) in flags, f"{role}.{field.name} has no flag"
    by_field = {flag_name(r, f) for r in GRADING_ROLES for f in RoleOptions.flag_fields(r)}
    by_field |= {"--" + key.replace("_", "-") for key in BatchSettings.flags()}
    prefixed = {f for f in flags if f.startswith(("--judge", "--verifier", "--batch-"))}
    assert prefixed <= by_field, f"flags without a field: {sorted(prefixed - by_field)}"


def test_the_verifier_has_its_own_key_concurrency_and_price(tmp_path: Path) -> None:
    """Before, the verifier borrowed the judge's key variable, concurrency and price."""
    (tmp_path / "task.py").write_text(TASK)
    in_flight, most = [0], [0]
    lock = threading.Lock()

    def script(body: dict[str, Any], _attempt: int) -> str:
        item = re.search(r"Problem (q\d)", body["messages"][-1]["content"])
        assert item is not None
        if body["model"] != "checker":
            return ANSWERS[item.group(1)]
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.2)
        with lock:
            in_flight[0] -= 1
        return f"Judgment: {VERDICTS[item.group(1)]}"

    env = {"JUDGE_KEY": "judge-secret", "VERIFIER_KEY": "verifier-secret"}
    with ScriptedServer(script) as server:
        args = ["--include", "task.py", "--tasks", "verify-me", "--base-url", server.url, "--model", "m", "--quiet"]
        args += ["--graders", "answer,verifier", "--verifier", "checker", "--verifier-base-url", server.url]
        args += ["--judge", "big-judge", "--judge-base-url", server.url, "--judge-api-key-env", "JUDGE_KEY"]
        args += ["--judge-price", "100,100", "--judge-concurrency", "8"]
        args += ["--verifier-api-key-env", "VERIFIER_KEY", "--verifier-concurrency", "1", "--verifier-price", "1,2"]
        result = run_cli(*args, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        checker = [(b, h) for b, h in zip(server.bodies, server.headers, strict=True) if b["model"] == "checker"]
    assert len(checker) == 3 and most[0] == 1  # three rejected answers, one at a time
    assert {h["Authorization"] for _, h in checker} == {"Bearer verifier-secret"}
    prompt = sum(len(b["messages"][-1]["content"]) for b, _ in checker)  # the server counts characters
    reply = sum(len(f"Judgment: {v}") for v in VERDICTS.values())
    summary = json.loads((tmp_path / "results" / "m" / "verify-me" / "summary.json").read_text())
    usage = summary["judge_usage"]["verifier"]
    assert abs(usage["cost_usd"] - (prompt * 1 + reply * 2) / 1e6) < 1e-12  # its own price, not the judge's


def test_one_budget_caps_the_judge_and_the_verifier_together() -> None:
    """Before, each role built its own budget with the same cap: --judge-budget 5 could spend $10."""
    values = {"judge": "j", "judge_base_url": "http://127.0.0.1:9/v1", "judge_price": "1,1", "judge_budget": 5.0}
    values |= {"verifier": "v", "verifier_price": "2,2"}
    budgets = shared_budgets(judge_settings(GradingOptions.from_values(values)))
    budgets["judge"].charge(Usage(2_000_000, 0))  # $2 of the judge's
    assert budgets["verifier"].fits()
    budgets["verifier"].charge(Usage(1_500_000, 0))  # $3 at the verifier's own price: $5 in all
    assert budgets["judge"].exhausted and budgets["verifier"].exhausted
    assert budgets["verifier"].usd == 5.0


def test_a_usd_grading_budget_needs_every_roles_price() -> None:
    values = {"judge": "j", "judge_base_url": "http://127.0.0.1:9/v1", "judge_price": "1,1", "judge_budget": 5.0}
    try:
        judge_settings(GradingOptions.from_values({**values, "verifier": "v"}))
    except Exception as exc:  # noqa: BLE001 - the message is the point
        assert "--verifier-price" in str(exc)
    else:
        raise AssertionError("a verifier without a price under a USD cap was accepted")


def test_a_served_verifier_without_its_own_url_uses_the_judges_server_and_key_variable() -> None:
    values = {"judge": "j", "judge_base_url": "http://127.0.0.1:9/v1", "judge_api_key_env": "JK", "verifier": "v"}
    settings = judge_settings(GradingOptions.from_values(values))["verifier"]
    assert settings.spec.backend == "openai"
    assert settings.spec.options.base_url == ("http://127.0.0.1:9/v1",)  # type: ignore[union-attr]
    assert settings.spec.options.api_key_env == "JK"  # type: ignore[union-attr]
    assert settings.spec.options.concurrency is None  # its own default, not the judge's  # type: ignore[union-attr]


def test_role_tables_in_a_config_file_are_the_roles_flags(tmp_path: Path) -> None:
    from mathusereval.cli.run import parse

    config = tmp_path / "run.toml"
    config.write_text(
        '[judge]\nmodel = "j"\nconcurrency = 3\n[verifier]\nmodel = "v"\nprice = "1,2"\n[batch]\npoll = 5\n'
    )
    args = parse(["--config", str(config)])
    assert (args.judge, args.judge_concurrency, args.verifier, args.verifier_price) == ("j", 3, "v", "1,2")
    assert args.batch_poll == 5.0


def test_the_readme_option_table_is_what_help_says() -> None:
    from mathusereval.cli.options import option_table

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    begin = "<!-- options: written by scripts/readme_options.py from `mue-eval run --help` -->\n"
    assert begin in readme, "README.md lacks the option table"
    shown = readme.split(begin, 1)[1].split("<!-- options end -->\n", 1)[0]
    assert shown == option_table(parser()), "run `python scripts/readme_options.py` to update README.md"
