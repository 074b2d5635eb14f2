"""Tool-integrated runs end to end (issue 33): a scripted server that answers in steps, checked item by item;
a run killed mid-chain and resumed without redoing a step; the embedded model through llama.cpp with
``--samples 4``; the run's refusal where the sandbox cannot hold."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from mathusereval.plugins import registry
from mathusereval.plugins.task import load_task
from mathusereval.records import GenerationParams, RunResult, Sample
from mathusereval.run.pipeline import RunOptions
from mathusereval.run.session import run_task
from mathusereval.tir.chain import StepRecord
from mathusereval.tir.protocol import MAX_CALLS_NOTE, MAX_FUNC_CALLS, STOP, SYSTEM_PROMPT, ToolStep, replay

from .conftest import MUE_EVAL, NO_NESTED_NAMESPACES, cli_env, inline_task, run_cli, run_engine_script
from .tir_server import CHATML_TEMPLATE, ScriptedTirServer

pytestmark = pytest.mark.slow
RUN = ("gsm8k-tir", "--limit", "3", "--limit-order", "file", "--quiet")


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _items(shared_data: Path, count: int = 3) -> list[tuple[str, str, str]]:
    """(sample id, question, gold) of the first `count` items of gsm8k-tir, as the run sends them."""
    loaded = load_task(registry.lookup("tasks", "gsm8k-tir"), shared_data)
    return [(s.id, s.messages[-1]["content"], s.reference) for s in loaded.samples[:count]]


def _args(server: ScriptedTirServer, shared_data: Path) -> list[str]:
    return ["--base-url", server.url, "--model", "tir-model", "--tasks", *RUN, "--data-dir", str(shared_data)]


def test_a_scripted_tir_run_item_by_item(tmp_path: Path, shared_data: Path) -> None:
    items = _items(shared_data)
    kinds = ("compute", "recover", "endless")
    plan = {q: (kind, gold) for (_, q, gold), kind in zip(items, kinds, strict=True)}
    with ScriptedTirServer(plan) as server:
        result = run_cli(*_args(server, shared_data), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not server.problems, server.problems
    assert "programs run sandboxed" in result.stderr
    run = tmp_path / "results" / "tir-model" / "gsm8k-tir"
    gens = {g["sample_id"]: g for g in _lines(run / "generations.jsonl")}
    grades = {g["sample_id"]: g for g in _lines(run / "grades.jsonl")}
    (id0, q0, gold0), (id1, q1, gold1), (id2, q2, _) = items

    # compute: a program, its output read back, a box of what it printed
    steps = [ToolStep.from_json(s) for s in gens[id0]["steps"]]
    assert [s.code for s in steps] == [f"print({gold0})\n", None]
    assert steps[0].output == gold0 and steps[0].exit_status == 0
    asked = server.requests_for(q0)
    assert [s.reply_so_far for s in asked] == [
        "",
        f"I will compute it.\n```python\nprint({gold0})\n```\n```output\n{gold0}\n```\n",
    ]
    assert gens[id0]["text"] == replay(steps[:1]) + steps[1].text and gens[id0]["text"].endswith(f"\\boxed{{{gold0}}}.")
    assert gens[id0]["usage"] == {"prompt_tokens": 20, "completion_tokens": 10}  # both requests counted
    assert grades[id0]["correct"] is True

    # recover: the error's last line is what the model reads; it fixes the program, then boxes
    steps = [ToolStep.from_json(s) for s in gens[id1]["steps"]]
    assert len(steps) == 3 and steps[0].exit_status != 0
    assert steps[0].output == "NameError: name 'undefined_name' is not defined"
    assert steps[1].output == gold1 and steps[2].code is None
    assert len(server.requests_for(q1)) == 3 and grades[id1]["correct"] is True

    # endless: four programs, upstream's note, no fifth request
    steps = [ToolStep.from_json(s) for s in gens[id2]["steps"]]
    assert len(steps) == MAX_FUNC_CALLS and all(s.code for s in steps)
    assert [s.output for s in steps] == ["10", "20", "30", "40"]
    assert gens[id2]["text"].endswith(MAX_CALLS_NOTE) and len(server.requests_for(q2)) == MAX_FUNC_CALLS
    assert gens[id2]["usage"]["completion_tokens"] == 5 * MAX_FUNC_CALLS

    # every step that ran a program was stored as it completed
    stored = [StepRecord.from_json(r) for r in _lines(run / "steps.jsonl")]
    assert sorted((r.sample_id, r.index) for r in stored) == sorted(
        [(id0, 0), (id1, 0), (id1, 1)] + [(id2, i) for i in range(MAX_FUNC_CALLS)]
    )
    summary = json.loads((run / "summary.json").read_text())
    assert summary["counts"]["completion_tokens"] == 10 + 15 + 20
    tools = {k: summary["counts"][k] for k in ("programs", "program_errors", "program_timeouts", "call_limit_reached")}
    assert tools == {"programs": 1 + 2 + 4, "program_errors": 1, "program_timeouts": 0, "call_limit_reached": 1}
    assert "programs: 7 run, 1 failed (0 timed out); 1 answers reached the call limit" in result.stderr

    verify = run_cli("verify", str(run), cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    steps_file = run / "steps.jsonl"
    original = steps_file.read_text()
    steps_file.write_text(original.replace('"output": "10"', '"output": "11"'))  # a stored step altered
    tampered = run_cli("verify", str(run), cwd=tmp_path)
    assert tampered.returncode != 0 and "steps.jsonl" in tampered.stdout + tampered.stderr
    steps_file.write_text(original)

    # the leaderboard labels the column, the run page shows each step with its program and output
    board = run_cli("leaderboard", "results", "--markdown", "board.md", "--out", "site", cwd=tmp_path)
    assert board.returncode == 0, board.stderr
    assert (tmp_path / "board.md").read_text().startswith("| model | gsm8k [tir] |")
    (page,) = (tmp_path / "site" / "runs").glob("*.html")
    html = page.read_text()
    assert "step 1: program (exit status 0," in html and f"print({gold0})" in html
    assert "step 1: output shown to the model" in html and "NameError: name &#x27;undefined_name&#x27;" in html
    assert html.count("step 4: program") == 1  # only the endless item reached a fourth program

    # an RFT export marks what the harness wrote into each trajectory, for the trainer to mask
    exported = run_cli("export", "--format", "rft", "--decide", "rule", "--out", "rft.jsonl", str(run), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    rows = {r["meta"]["sample_id"]: r for r in _lines(tmp_path / "rft.jsonl")}
    text = rows[id0]["messages"][-1]["content"]
    ((start, end),) = rows[id0]["meta"]["tool_output_spans"]
    assert text[start:end] == f"\n```output\n{gold0}\n```\n" and text[:start].endswith("```")


def test_a_chat_server_that_cannot_continue_a_turn_gets_continuations_on_completions(
    tmp_path: Path, shared_data: Path
) -> None:
    """OpenAI's API refuses ``continue_final_message``: without a template each continuation is that item's
    error, naming the remedy; with ``--chat-template`` the continuations go to ``/completions`` as the model's
    ChatML prompt plus the reply so far (the server checks the prompt's shape), and every chain completes."""
    items = _items(shared_data)
    plan = {q: (kind, gold) for (_, q, gold), kind in zip(items, ("compute", "recover", "compute"), strict=True)}
    (tmp_path / "chatml.jinja").write_text(CHATML_TEMPLATE)
    with ScriptedTirServer(plan, prefill=False) as server:
        refused = run_cli(*_args(server, shared_data), "--out", "refused", cwd=tmp_path)
        assert server.refused == 3 and not server.problems, server.problems
        gens = _lines(tmp_path / "refused" / "tir-model" / "gsm8k-tir" / "generations.jsonl")
        assert refused.returncode != 0 and len(gens) == 3
        assert all("--chat-template FILE sends continuations to /completions" in g["error"] for g in gens), gens
        server.seen.clear()
        args = [*_args(server, shared_data), "--chat-template", "chatml.jinja"]
        result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert server.refused == 3 and not server.problems, server.problems  # no further refusal
    run = tmp_path / "results" / "tir-model" / "gsm8k-tir"
    gens = {g["sample_id"]: g for g in _lines(run / "generations.jsonl")}
    assert all(g["correct"] for g in _lines(run / "grades.jsonl")) and len(gens) == 3
    (id0, q0, gold0), (id1, q1, _), _ = items
    asked = server.requests_for(q0)
    assert [s.reply_so_far for s in asked] == [
        "",
        f"I will compute it.\n```python\nprint({gold0})\n```\n```output\n{gold0}\n```\n",
    ]
    assert [s.route for s in asked] == ["chat", "completions"]  # the second as a ChatML prompt, read back
    assert len(server.requests_for(q1)) == 3 and len(gens[id1]["steps"]) == 3
    manifest = json.loads((run / "manifest.json").read_text())
    assert "continued_replies" in json.dumps(manifest)


def test_tir_tasks_refuse_the_batch_api(tmp_path: Path, shared_data: Path) -> None:
    with ScriptedTirServer({}) as server:
        result = run_cli(*_args(server, shared_data), "--batch", cwd=tmp_path)
    assert result.returncode == 2 and "do not go through the Batch API" in result.stderr, result.stderr
    assert not server.seen


def test_a_spent_token_budget_ends_a_tir_run(tmp_path: Path, shared_data: Path) -> None:
    """Each request costs 15 tokens (10 + 5); a budget of 40 refuses the third continuation. The run must
    stop and say the budget is spent (as a CoT run does), not wait forever."""
    ((_, question, gold),) = _items(shared_data, 1)
    with ScriptedTirServer({question: ("endless", gold)}) as server:
        args = ["--base-url", server.url, "--model", "tir-model", "--tasks", "gsm8k-tir", "--limit", "1"]
        args += ["--limit-order", "file", "--quiet", "--data-dir", str(shared_data), "--max-tokens-total", "40"]
        try:
            result = run_cli(*args, cwd=tmp_path, timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("mue-eval --max-tokens-total 40 on gsm8k-tir did not end within 60 s (it waits forever)")
    assert "budget" in result.stderr, result.stderr
    run = tmp_path / "results" / "tir-model" / "gsm8k-tir"
    # three requests were sent (45 tokens, the third admitted at 30): their steps wait for the next run
    assert len(_lines(run / "steps.jsonl")) == 3 and _lines(run / "generations.jsonl") == []


def test_a_program_printing_think_close_does_not_change_the_grade(tmp_path: Path, shared_data: Path) -> None:
    """The model's first program prints the right box (graded, as upstream grades the last box of the
    trajectory); its second prints ``</think>``; its last text has no box. With the default ``--think strip``
    everything before the program's ``</think>`` is moved to ``reasoning`` and the box is lost."""
    ((_, question, gold),) = _items(shared_data, 1)

    class Server(ScriptedTirServer):
        def answer(self, body: dict, route: str = "chat") -> str:  # type: ignore[type-arg]
            reply = body["messages"][-1]["content"] if body["messages"][-1]["role"] == "assistant" else ""
            step = reply.count("```output\n")
            if step == 0:
                return f"```python\nprint(chr(92) + 'bo' + 'xed{{{gold}}}')\n```"
            if step == 1:
                return "Check.\n```python\nprint('</' + 'think>')\n```"
            return "I am done."

    with Server({}) as server:
        args = ["--base-url", server.url, "--model", "tir-model", "--tasks", "gsm8k-tir", "--limit", "1"]
        args += ["--limit-order", "file", "--quiet", "--data-dir", str(shared_data)]
        result = run_cli(*args, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    run = tmp_path / "results" / "tir-model" / "gsm8k-tir"
    grade = json.loads((run / "grades.jsonl").read_text().splitlines()[0])
    generation = json.loads((run / "generations.jsonl").read_text().splitlines()[0])
    assert generation["reasoning"] is None, "a program's output was taken for the model's reasoning"
    assert generation["text"].endswith("I am done.") and "</think>" in generation["text"]
    assert grade["correct"] is True, grade


def test_a_run_killed_mid_chain_resumes_from_its_last_step(tmp_path: Path, shared_data: Path) -> None:
    items = _items(shared_data)
    plan = {q: ("compute", gold) for _, q, gold in items}
    run = tmp_path / "results" / "tir-model" / "gsm8k-tir"
    with ScriptedTirServer(plan) as server:
        server.gate.clear()  # continuations wait: every chain stops after its first stored step
        proc = subprocess.Popen(
            [str(MUE_EVAL), *_args(server, shared_data)],
            cwd=tmp_path,
            env=cli_env(tmp_path),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while len(_lines(run / "steps.jsonl")) < 3 or server.waiting < 3:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not _lines(run / "generations.jsonl")  # killed mid-chain: no answer was finished
        server.gate.set()
        result = run_cli(*_args(server, shared_data), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert not server.problems, server.problems
    for _, question, _ in items:  # the first step was asked once, over both runs
        assert sum(1 for s in server.requests_for(question) if not s.reply_so_far) == 1
    assert len(_lines(run / "steps.jsonl")) == 3  # no program ran again
    gens = _lines(run / "generations.jsonl")
    assert len(gens) == 3
    for gen, (sample_id, _, gold) in zip(sorted(gens, key=lambda g: g["sample_id"]), sorted(items), strict=True):
        assert gen["sample_id"] == sample_id and len(gen["steps"]) == 2
        assert gen["text"].endswith(f"\\boxed{{{gold}}}.") and gen["usage"]["completion_tokens"] == 10
    assert all(g["correct"] for g in _lines(run / "grades.jsonl"))


def test_samples_4_on_the_embedded_model(tmp_path: Path, shared_data: Path) -> None:
    """The plumbing on a real engine: four chains per item through llama.cpp (the tiny model may or may not
    write programs; whatever it writes, every answer is a well-formed chain)."""
    args = ["--tasks", "gsm8k-tir", "--limit", "2", "--samples", "4", "--temperature", "0.8"]  # 8 chains
    result = run_cli(
        *args, "--max-tokens", "48", "--threads", "1", "--quiet", "--data-dir", str(shared_data), cwd=tmp_path
    )
    assert result.returncode in (0, 1), result.stderr  # 1: a chain longer than the context is that item's error
    run = tmp_path / "results" / "smollm2-135m-instruct" / "gsm8k-tir"
    gens = _lines(run / "generations.jsonl")
    assert sorted((g["sample_id"], g["n_index"]) for g in gens) == sorted(
        (sid, k) for sid in {g["sample_id"] for g in gens} for k in range(4)
    )
    assert len(gens) == 8
    for gen in gens:
        if gen["error"] is not None:
            continue
        steps = [ToolStep.from_json(s) for s in gen["steps"]]
        assert 1 <= len(steps) <= MAX_FUNC_CALLS and gen["usage"]["completion_tokens"] > 0
        assert gen["text"].startswith(steps[0].text.rstrip())
        assert all(s.output is not None for s in steps if s.code is not None)
    assert len(_lines(run / "grades.jsonl")) == sum(1 for g in gens if g["error"] is None)


def test_llama_cpp_continues_the_assistant_turn(tmp_path: Path) -> None:
    """A continued reply is the rendered prompt up to the assistant's turn, then the reply so far (the model
    goes on writing it instead of starting a new turn); and a whole chain through llama.cpp: the model copies
    a program, cut where the block ends (its own token count), the sandbox runs it, the model continues."""
    from mathusereval.backends import ModelSpec
    from mathusereval.backends.llamacpp import LlamaCppBackend

    spec = ModelSpec.of("llamacpp", "smollm2-135m-instruct", threads=1)
    backend = LlamaCppBackend(spec)
    llm = backend._load()
    messages = [{"role": "user", "content": "Count to five."}, {"role": "assistant", "content": "One, two,"}]
    tokens = backend._continued_prompt(llm, messages)
    text = llm.detokenize(tokens, special=True).decode()
    assert text.endswith("<|im_start|>assistant\nOne, two,") and text.count("<|im_start|>assistant") == 1

    block = "```python\nprint(6 * 7)\n```"
    question = {"role": "user", "content": "Copy this text exactly, nothing else:\n" + block}
    sample = Sample("tir-copy", "copy", ({"role": "system", "content": SYSTEM_PROMPT}, question), "42")
    params = GenerationParams(max_tokens=len(llm.tokenize(block.encode(), add_bos=False)), stop=STOP, n=4)
    task = dataclasses.replace(inline_task("tir-copy", [sample]), tir=True, params=params)
    reply = f"{block}\n```output\n42\n```\n"  # what the second request continues
    continued = len(backend._continued_prompt(llm, [*sample.messages, {"role": "assistant", "content": reply}]))

    async def go() -> RunResult:
        try:
            return await run_task(task, spec, backend, RunOptions(out=tmp_path, progress=False))
        finally:
            await backend.aclose()

    result = asyncio.run(go())
    gens = _lines(result.directory / "generations.jsonl")
    assert sorted(g["n_index"] for g in gens) == [0, 1, 2, 3]
    for gen in gens:
        steps = [ToolStep.from_json(s) for s in gen["steps"]]
        assert steps[0].text == block and steps[0].output == "42" and steps[0].exit_status == 0
        assert len(steps) == 2 and steps[1].code is None and steps[1].text.strip()
        assert gen["text"] == reply + steps[1].text.rstrip()
    stored = _lines(result.directory / "steps.jsonl")
    assert len(stored) == 4 and all(r["step"]["output"] == "42" for r in stored)
    for gen, record in zip(
        sorted(gens, key=lambda g: g["n_index"]), sorted(stored, key=lambda r: r["n_index"]), strict=True
    ):
        first = record["usage"]
        assert first["completion_tokens"] == params.max_tokens  # the copied block, cut where it ends
        # tokens of both requests: the second one's prompt is the rendered conversation plus the reply so far
        assert gen["usage"]["prompt_tokens"] == first["prompt_tokens"] + continued
        assert gen["usage"]["completion_tokens"] > first["completion_tokens"]


def _without_namespaces(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``mue-eval`` where user namespaces are capped at one level (as where a container disables them): the
    cap is set inside a user namespace of its own (the machine's sysctl is not ours to change)."""
    return subprocess.run(
        [*NO_NESTED_NAMESPACES, str(MUE_EVAL), *args],
        cwd=cwd,
        env=cli_env(cwd),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def test_the_run_refuses_where_the_sandbox_cannot_hold(tmp_path: Path, shared_data: Path) -> None:
    """No namespaces: the run says why and sends nothing, unless --sandbox unisolated."""
    plan = {q: ("compute", gold) for _, q, gold in _items(shared_data, 1)}
    args = ["--tasks", "gsm8k-tir", "--limit", "1", "--limit-order", "file", "--quiet", "--data-dir", str(shared_data)]
    with ScriptedTirServer(plan) as server:
        base = ["--base-url", server.url, "--model", "tir-model", *args]
        refused = _without_namespaces(base, tmp_path)
        assert refused.returncode != 0 and "--sandbox unisolated" in refused.stderr, refused.stderr
        assert not server.seen  # nothing was sent
        allowed = _without_namespaces([*base, "--sandbox", "unisolated"], tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    assert "UNISOLATED" in allowed.stderr and not server.problems


VLLM_CONTINUES = """
import asyncio, json, sys
from mathusereval.backends import ModelSpec, make_backend
from mathusereval import GenerationParams, Request, Sample

async def main():
    backend = make_backend(ModelSpec.of("vllm", sys.argv[1], enforce_eager=True, max_model_len=2048))
    asked = [{"role": "user", "content": "Count to five."}]
    going_on = [*asked, {"role": "assistant", "content": "One, two,"}]
    requests = [Request(Sample("t", name, tuple(m), "")) for name, m in (("new", asked), ("on", going_on))]
    got = {}
    async for g in backend.generate(requests, GenerationParams(max_tokens=4)):
        got[g.sample_id] = [g.error, g.usage.prompt_tokens]
    await backend.aclose()
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(sys.argv[1])
    def count(text):
        return len(tok(text, add_special_tokens=False).input_ids)
    rendered = tok.apply_chat_template(
        going_on, tokenize=False, add_generation_prompt=False, continue_final_message=True
    )
    opened = tok.apply_chat_template(asked, tokenize=False, add_generation_prompt=True)
    assert rendered.endswith("One, two,") and opened.rstrip().endswith("assistant")
    print(json.dumps({"got": got, "continued": count(rendered), "opened": count(opened)}))

if __name__ == "__main__":  # vLLM may spawn its engine process, which imports this file again
    asyncio.run(main())
"""


def test_vllm_in_process_continues_the_assistant_turn(engine: Path, tmp_path: Path) -> None:
    """vLLM renders a conversation that ends in an assistant turn without opening a new one
    (``continue_final_message``): its prompt is the chat template's continued rendering, token for token."""
    result = run_engine_script(engine, tmp_path, VLLM_CONTINUES)
    assert result.returncode == 0, result.stderr[-5000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["got"]["new"] == [None, report["opened"]], report
    assert report["got"]["on"] == [None, report["continued"]], report
