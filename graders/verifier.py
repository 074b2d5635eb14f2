"""An LLM verifier for what the rules cannot decide: ``--graders answer,verifier --verifier MODEL``.

The idea of OpenCompass's CascadeEvaluator with CompassVerifier and of evalscope's ``llm_recall``: the
answer grader decides first; only the answers it marked wrong or could not read go to a model, which sees
the question, the reference and the final answer and replies with one letter (A correct, B incorrect,
C no usable answer), in the style of the xVerify and CompassVerifier prompts (the wording here is ours).
It runs through the judge machinery (any backend; cache, bounded retries, budget), as its own role.

The verifier never hides the rule verdict: the answer grader stays the primary grader, and this grader
reports its own ``accuracy`` (rule-correct, or rule-wrong and verified A) and ``flipped``, the number of
answers it turned from wrong to right; a flipped grade carries ``dimensions: {"flipped": 1}``, and a
grade the rules settled carries the rule's reason.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from mathusereval.plugins.metrics import accuracy
from mathusereval.records import Generation, Grade, Message, MetricValue, Sample, Settled

from .answer import grade_many
from .extract import extract_answer
from .judge import Judgment

PROMPT = """You are checking a student's final answer to a math problem against the reference answer.
Judge only the final answer. Equivalent forms count as the same answer: a fraction and its decimal value,
reordered terms or set elements, an equal expression written differently, a unit written or left out.
A different value, an incomplete answer, or several conflicting answers do not.

Reply with one letter and nothing else:
A: the final answer is correct (equivalent to the reference)
B: the final answer is incorrect
C: there is no usable final answer (empty, cut off, a refusal, or a repetition of the question)

Question:
{question}

Reference answer:
{reference}

Student's final answer:
{answer}

Your judgment (A, B or C):"""

_VERDICT = re.compile(
    r"^[\s*_>#`\"'(\[]*(?i:(?:your\s+)?(?:final\s+)?(?:judg(?:e)?ment|verdict|answer|grade|decision|letter|判断|答案)"
    r"\s*(?:\([^)\n]{0,20}\))?\s*[:：]\s*[*_\"'(\[]*)?([ABC])(?![A-Za-z0-9])"
)
"""The verdict where the prompt asks for it: the reply's first word, after at most a label (``Grade:``,
``Your judgment (A, B or C):``) and mark-up; never a letter later in the reply (a quoted answer's)."""
SCORES = {"A": 1.0, "B": 0.0, "C": 0.0}
ANSWER_CHARS = 2000


@dataclass(frozen=True)
class LLMVerifier:
    """The `JudgeGrader` contract in the ``verifier`` role; its `settle` step keeps the answers the rules
    already got right from ever reaching the model."""

    name: str = "verifier"
    role: str = "verifier"
    score_range: tuple[float, float] = (0.0, 1.0)
    style: str = "verifier"
    threshold: float = 0.5

    @property
    def prompt_sha256(self) -> str:
        return hashlib.sha256(PROMPT.encode()).hexdigest()

    def messages(self, sample: Sample, generation: Generation) -> tuple[Message, ...]:
        answer = extract_answer(generation.text) or generation.text[-ANSWER_CHARS:]
        text = PROMPT.format(question=sample.question, reference=sample.reference, answer=answer[:ANSWER_CHARS])
        return ({"role": "user", "content": text},)

    def parse(self, text: str, answer: str = "") -> Judgment:
        """The verdict letter, read where the prompt asks for it: the reply's first word (`_VERDICT`). A reply
        that does not begin with it is a parse failure (asked again, then counted), never a flip: a letter
        later in the reply may be the student's answer quoted, or prose ("A student could argue")."""
        match = _VERDICT.match(text[:400])
        if match is None:
            return Judgment(None, {}, "the reply does not begin with a verdict letter (A, B or C)")
        letter = match.group(1)
        # only answers the rules rejected reach the model: an A turns a wrong answer right
        return Judgment(SCORES[letter], {"flipped": 1.0} if letter == "A" else {})

    def upstream(self, text: str) -> float:
        judgment = self.parse(text)
        return -1.0 if judgment.score is None else judgment.score

    def settle(self, items: Sequence[tuple[Sample, Generation]], cascade: bool = False) -> list[Settled | None]:
        """Per item: the rule verdict when the answer grader already says correct (always, whatever
        `cascade` says: the verifier only ever sees what the rules reject), else None (ask the model)."""
        verdicts = grade_many([(s.reference, g.text) for s, g in items]) if items else []
        return [Settled(1.0, {"rule": v.reason, "flipped": False}) if v.correct else None for v in verdicts]

    def aggregate(self, samples: Sequence[Sample], grades: Sequence[Grade]) -> list[MetricValue]:
        """Accuracy with the verifier's verdicts, and how many answers it flipped from wrong to right."""
        flipped = sum(bool((g.details.get("dimensions") or {}).get("flipped")) for g in grades)
        metrics = accuracy(samples, grades)
        return [*metrics, MetricValue("flipped", float(flipped), len(grades))]


VERIFIER = LLMVerifier()
