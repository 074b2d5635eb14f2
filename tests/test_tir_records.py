"""The stored side of tool-integrated answers (issue 33): step records as hostile input, what a resumed chain
starts from, a generation's steps, the completions prompt of a continued reply, the TIR task variants."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mathusereval.backends.base import completion_prompt, continues
from mathusereval.errors import DataError
from mathusereval.plugins import registry
from mathusereval.records import Generation, Sample, Usage
from mathusereval.store import RunStore
from mathusereval.tir.chain import StepRecord, ToolChains, continuation
from mathusereval.tir.protocol import STOP, SYSTEM_PROMPT, ToolStep
from mathusereval.tir.sandbox import Sandbox

STEP = ToolStep("Compute.\n```python\nprint(1)\n```", "print(1)\n", "1", 0, 0.1)


def record(index: int, output: str = "1", sample: str = "a") -> StepRecord:
    step = ToolStep(STEP.text, STEP.code, output, 0, 0.1)
    return StepRecord(sample, 0, index, step, "m", Usage(7, 3), 0.5)


def test_a_step_record_round_trips_and_refuses_bad_fields() -> None:
    one = record(1)
    assert StepRecord.from_json(json.loads(json.dumps(one.to_json()))) == one
    for bad in (
        {**one.to_json(), "index": 4},  # past max_func_call
        {**one.to_json(), "index": -1},
        {**one.to_json(), "n_index": "0"},
        {**one.to_json(), "step": {**STEP.to_json(), "code": None}},  # only steps that ran a program are stored
        {**one.to_json(), "step": {**STEP.to_json(), "seconds": -1}},
        {**one.to_json(), "step": "text"},
        {**one.to_json(), "usage": {"prompt_tokens": "7"}},
    ):
        with pytest.raises(TypeError):
            StepRecord.from_json(bad)


def _store(tmp_path: Path) -> RunStore:
    store = RunStore(tmp_path / "run")
    store.open()
    return store


def test_a_resumed_chain_starts_from_its_consecutive_stored_steps(tmp_path: Path) -> None:
    store = _store(tmp_path)
    for r in (record(0), record(1, "first"), record(1, "again"), record(0, sample="b"), record(2, sample="b")):
        store.add_step(r.to_json())
    store.close()
    chains = ToolChains(RunStore(tmp_path / "run"), Sandbox(), "origin", tmp_path, 0)
    assert [r.step.output for r in chains.resumed[("a", 0)]] == ["1", "again"]  # a step stored again replaces it
    assert [r.index for r in chains.resumed[("b", 0)]] == [0]  # a gap: only what precedes it counts


def test_a_corrupt_step_line_names_the_file_and_line(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.add_step(record(0).to_json())
    store.close()
    path = tmp_path / "run" / "steps.jsonl"
    path.write_text(path.read_text() + json.dumps({**record(1).to_json(), "index": "1"}) + "\n")
    with pytest.raises(DataError, match=r"steps\.jsonl:2: corrupt record"):
        ToolChains(RunStore(tmp_path / "run"), Sandbox(), "origin", tmp_path, 0)


def test_a_generation_keeps_its_steps_and_a_plain_one_writes_none() -> None:
    plain = Generation("a", 0, "m", text="x")
    assert "steps" not in plain.to_json()
    chained = Generation("a", 0, "m", text="x", steps=(STEP.to_json(),))
    back = Generation.from_json(json.loads(json.dumps(chained.to_json())))
    assert back == chained and isinstance(back.steps, tuple)
    with pytest.raises(TypeError, match="steps"):
        Generation.from_json({**chained.to_json(), "steps": "text"})


def test_a_continued_reply_on_the_completions_endpoint_follows_the_prompt() -> None:
    messages = ({"role": "system", "content": "S"}, {"role": "user", "content": "Q"})
    assert not continues(messages) and completion_prompt(messages) == "S\n\nQ"
    reply = "Let me compute.\n```python\nprint(1)\n```\n```output\n1\n```\n"
    going_on = continuation(Sample("t", "a", messages, "1"), reply).messages
    assert continues(going_on) and completion_prompt(going_on) == "S\n\nQ" + reply


def test_the_tir_variants_use_upstreams_prompt_and_keep_ids(shared_data: Path) -> None:
    from mathusereval.plugins.task import load_task

    for name in ("gsm8k", "math500", "aime24", "amc23", "math", "minerva_math", "cmath"):
        base, tir = registry.lookup("tasks", name), registry.lookup("tasks", f"{name}-tir")
        assert tir.tir and not base.tir and tir.params.stop == STOP and tir.graders == base.graders
        plain, tool = load_task(base, shared_data).samples[:3], load_task(tir, shared_data).samples[:3]
        assert [s.id for s in plain] == [s.id for s in tool] and [s.reference for s in plain] == [
            s.reference for s in tool
        ]
        for s in tool:
            assert s.messages[0] == {"role": "system", "content": SYSTEM_PROMPT} and len(s.messages) == 2
            assert "Please reason step by step" not in s.messages[1]["content"] and s.task == f"{name}-tir"


def test_tir_columns_are_labelled() -> None:
    from mathusereval.leaderboard.tables import tir_header

    assert tir_header("math500-tir") == "math500 [tir]" and tir_header("math500") == "math500"


def test_a_box_in_program_output_counts_only_as_upstream_counts_it() -> None:
    """parser.extract_answer takes the last "boxed" of the whole trajectory: a printed box is the answer when
    the model's own text boxes nothing; a box the model wrote ends the chain and is its answer."""
    from mathusereval.graders.answer import answer_grader

    sample = Sample("t", "a", (), "2")
    # a segment that says "boxed" runs no program (math_eval.py), so a program that prints a box spells it apart
    segment = "Compute.\n```python\nprint('\\\\' + 'box' + 'ed{2}')\n```"
    printed = segment + "\n```output\n\\boxed{2}\n```\n"
    steps = (ToolStep(segment, "print('\\\\' + 'box' + 'ed{2}')\n", "\\boxed{2}", 0, 0.1).to_json(),)
    cases = [
        (printed + "Reach max function call limit.", steps, True),  # the model never boxed: upstream reads 2
        (printed + "So it is \\boxed{3}.", (*steps, ToolStep("So it is \\boxed{3}.").to_json()), False),
        (printed + "Reach max function call limit.", (), False),  # not a chain: program output is not an answer
    ]
    for text, chain, correct in cases:
        assert answer_grader(sample, Generation("a", 0, "m", text=text, steps=chain)).correct is correct


def test_a_served_chat_template_is_checked_and_fails_items_alone() -> None:
    """``--chat-template`` for a server's continued replies: a template that does not compile, or that is
    refused on a plain conversation, stops the run before anything is sent; one that raises on some
    conversation fails that item only; the Jinja sandbox holds."""
    from mathusereval.backends.chat_template import TemplateFailed, TemplateRenderer
    from mathusereval.errors import ConfigError

    with pytest.raises(ConfigError, match="not a usable Jinja"):
        TemplateRenderer("{% for m in messages %}").check()
    with pytest.raises(ConfigError, match="fails on a one-question conversation"):
        TemplateRenderer("{{ raise_exception('no') }}").check()
    picky = TemplateRenderer(
        "{% if messages|length > 1 %}{{ raise_exception('one turn only') }}{% endif %}<q>{{ messages[0].content }}"
    )
    picky.check()
    two = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "assistant", "content": "c"}]
    with pytest.raises(TemplateFailed, match="one turn only"):
        picky.render(two)
    assert picky.render(two[1:]) == "<q>bc"
    escape = TemplateRenderer("{{ messages.__class__.__mro__ }}")
    with pytest.raises(TemplateFailed, match="sandbox"):
        escape.render(two)
    for renderer in (picky, escape):
        renderer.close()


def test_a_served_chat_template_is_bounded_in_time_memory_and_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """The template renders in a child process: single C calls that no trace could stop (an integer squared in
    a loop, a huge ljust, '~' doubling) are killed by its time and memory bounds, the caller's thread is free
    meanwhile, and the next rendering starts a fresh child."""
    import threading

    from mathusereval.backends import chat_template
    from mathusereval.backends.chat_template import TemplateFailed, TemplateRenderer

    monkeypatch.setattr(chat_template, "RENDER_SECONDS", 2.0)
    turns = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    cases = {
        "took more than 2 s": [
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "{% set ns = namespace(x=3) %}{% for i in range(10) %}{% set ns.x = ns.x ** 64 %}{% endfor %}",
        ],
        "memory": [
            "{{ 'x' * 10**10 }}",
            "{{ 'x'.ljust(2500000000)|length }}",
            "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        ],
        "rendered prompt is over": ["{% for i in range(100000) %}{{ 'y' * 1000 }}{% endfor %}"],
    }
    ticks: list[float] = []
    stop = threading.Event()
    ticker = threading.Thread(target=lambda: [ticks.append(1) for _ in iter(lambda: stop.wait(0.05), True)])
    ticker.start()
    for why, templates in cases.items():
        for template in templates:
            renderer = TemplateRenderer(template)
            for _ in range(2):  # and again: a killed child is replaced
                before, start = len(ticks), time.monotonic()
                with pytest.raises(TemplateFailed, match=why):
                    renderer.render(turns)
                # this process's other threads ran meanwhile (the GIL is not held by a C call of the template)
                assert len(ticks) - before >= (time.monotonic() - start) / 0.05 / 2 - 1, template
            renderer.close()
    stop.set()
    ticker.join()
    renderer = TemplateRenderer("{{ 'ab' * 3 }}|")
    assert renderer.render(turns) == "ababab|a" and renderer.render(turns) == "ababab|a"
    renderer.close()


def test_a_served_chat_template_fails_one_item_for_what_a_template_or_a_conversation_holds() -> None:
    """A lone surrogate (a stored step, a data file) renders as it came; whatever a template raises (1/0, a float
    overflow, '%c' past Unicode) is that item's error, named, and the child goes on (no restart)."""
    from mathusereval.backends.chat_template import TemplateFailed, TemplateRenderer

    echo = TemplateRenderer("{% for m in messages %}<{{ m.content }}>{% endfor %}")
    assert echo.render([{"role": "user", "content": "\udcff"}, {"role": "assistant", "content": "x \ud800"}]) == (
        "<\udcff>x \ud800"
    )
    echo.close()
    raising = TemplateRenderer(
        "{% if messages|length > 1 %}{{ messages[0].content|int / 0 if messages[0].content == '0' else "
        "(10.0 ** 400 if messages[0].content == '1' else '%c' % 1114112) }}{% endif %}ok"
    )
    raising.check()
    child = raising._child
    for content, error in (("0", "ZeroDivisionError"), ("1", "OverflowError"), ("2", "OverflowError")):
        turns = [
            {"role": "user", "content": content},
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": ""},
        ]
        with pytest.raises(TemplateFailed, match=f"failed on this conversation \\({error}"):
            raising.render(turns)
    assert raising._child is child and child is not None and child.poll() is None
    raising.close()


def test_a_stopped_renderer_lets_every_thread_go_and_renders_again_after() -> None:
    """A run that ends or is interrupted mid-rendering: the rendering under way and those waiting their turn
    end at once (no thread holds the process's exit for 5 s each); a later rendering starts a new child."""
    import threading

    from mathusereval.backends.chat_template import TemplateFailed, TemplateRenderer

    endless = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
    slow = "{% if messages|length > 1 %}" + endless + "{% endif %}done"
    renderer = TemplateRenderer(slow)
    renderer.check()
    turns = [{"role": "user", "content": "q"}, {"role": "user", "content": "r"}, {"role": "assistant", "content": "a"}]
    errors: list[str] = []

    def render() -> None:
        try:
            renderer.render(turns)
        except TemplateFailed as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=render) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    start = time.monotonic()
    renderer.stop()
    for thread in threads:
        thread.join(timeout=10)
    assert time.monotonic() - start < 2 and len(errors) == 4, errors
    assert errors.count("the run is stopping") == 3 and renderer._child is None
    assert renderer.render(turns[1:]) == "donea"  # one turn: no loop; a new child
    renderer.close()


@pytest.mark.slow
def test_a_template_child_whose_parent_died_ends_on_its_own() -> None:
    """The parent killed (SIGKILL: nothing of it runs) mid-rendering: the child's own alarm ends it soon after
    the parent's bound, even inside one long C call, instead of spinning on."""
    import json
    import subprocess
    import sys

    from mathusereval.backends import chat_template

    child = subprocess.Popen(
        [sys.executable, "-m", "mathusereval.backends.chat_template"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert child.stdin is not None and child.stdout is not None
    squaring = "{% set ns = namespace(x=3) %}{% for i in range(10) %}{% set ns.x = ns.x ** 64 %}{% endfor %}"
    child.stdin.write(json.dumps(squaring).encode() + b"\n")
    child.stdin.flush()
    assert json.loads(child.stdout.readline()) == {"ready": ""}
    child.stdin.write(
        json.dumps([{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}]).encode() + b"\n"
    )
    child.stdin.flush()  # and the parent is gone: nobody will kill it or close its input
    start = time.monotonic()
    assert child.wait(timeout=chat_template.RENDER_SECONDS + 10) == -14  # SIGALRM
    assert time.monotonic() - start < chat_template.RENDER_SECONDS + 4
    child.stdin.close()
    child.stdout.close()


def test_a_served_chat_template_wants_the_chat_endpoint_and_no_batch() -> None:
    from mathusereval.backends import ModelSpec, make_backend
    from mathusereval.backends.options import BatchSettings
    from mathusereval.errors import ConfigError

    url = "http://127.0.0.1:9/v1"
    with pytest.raises(ConfigError, match="--endpoint chat"):
        make_backend(ModelSpec.of("openai", "m", base_url=url, endpoint="completions", chat_template="{{ 1 }}"))
    with pytest.raises(ConfigError, match="not --batch"):
        make_backend(ModelSpec.of("openai", "m", base_url=url, chat_template="{{ 1 }}", batch=BatchSettings()))


def test_stored_chains_are_bounded_and_their_counts_not_negative(tmp_path: Path) -> None:
    """A hand-made record with more steps than a chain can make, a negative count or latency, or a step
    that claims a day of running is a corrupt record named by file and line, not a page of 100,000 steps or
    a run total of minus a trillion tokens."""
    from mathusereval.records.items import MAX_TOOL_STEPS
    from mathusereval.tir.protocol import MAX_FUNC_CALLS, ToolStep

    assert MAX_TOOL_STEPS == MAX_FUNC_CALLS
    step = {"text": "t", "code": None, "output": None, "exit_status": None, "seconds": 0.1}
    base = {"sample_id": "s", "n_index": 0, "model": "m", "text": "t"}
    with pytest.raises(TypeError, match="at most 4"):
        Generation.from_json({**base, "steps": [step] * 5})
    with pytest.raises(TypeError, match="negative token count"):
        Generation.from_json({**base, "usage": {"prompt_tokens": -5, "completion_tokens": 1}})
    with pytest.raises(TypeError, match="latency_s"):
        Generation.from_json({**base, "latency_s": -1.0})
    with pytest.raises(DataError, match="seconds"):
        ToolStep.from_json({**step, "seconds": 1e300})
    record = StepRecord("s", 0, 0, ToolStep("t", "print(1)\n", "1", 0, 0.1), "m", Usage(10, 5), 0.2).to_json()
    with pytest.raises(TypeError, match="negative"):
        StepRecord.from_json({**record, "usage": {"prompt_tokens": -1, "completion_tokens": 0}})
    with pytest.raises(TypeError, match="negative"):
        StepRecord.from_json({**record, "latency_s": -99.0})
    assert StepRecord.from_json(record).usage == Usage(10, 5)


def test_the_suite_groups_have_tir_variants() -> None:
    for name in ("math-suite", "math-suite-en", "math-suite-zh"):
        base, tir = registry.lookup("groups", name), registry.lookup("groups", f"{name}-tir")
        assert [label for label, _ in tir.parts] == [label for label, _ in base.parts]
        assert [names for _, names in tir.parts] == [tuple(f"{n}-tir" for n in names) for _, names in base.parts]
