"""Where things are in a response: ``\\boxed{}`` groups, and the code, tool calls and tool output that
hold no final answer.

Linear scans over bounded text (the caller passes the searched tail of a response); nothing is parsed.
"""

from __future__ import annotations

import bisect
import re

_BOX_OPENERS = re.compile(r"\\(?:boxed|fbox)\s*\{")
_CONNECTOR_WORDS = 4
"""Boxes separated by at most this many words ("\\boxed{1} and \\boxed{2}") form one multi-part answer."""


def balanced_end(text: str, open_brace: int) -> int:
    """Index of the brace closing the one at `open_brace`, or -1.

    An escaped brace (``\\{``, ``\\}``: a literal brace in TeX) is not a group brace, so a piecewise
    function ``\\left\\{\\begin{array}...\\right.`` inside a box does not leave the box open; ``\\\\{``
    (a line break, then a group) is a group brace."""
    depth = 0
    i = open_brace
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2  # the escaped character, whatever it is
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def boxed_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of every balanced, non-empty ``\\boxed{...}`` / ``\\fbox{...}``."""
    spans: list[tuple[int, int, str]] = []
    pos = 0
    while (match := _BOX_OPENERS.search(text, pos)) is not None:
        end = balanced_end(text, match.end() - 1)
        if end < 0:
            break
        content = text[match.end() : end].strip()
        if content:
            spans.append((match.start(), end + 1, content))
        pos = end + 1
    return spans


def _gap_is_connector(gap: str) -> bool:
    gap = re.sub(r"\\(?:text|mathrm|textbf)\{([^{}]*)\}|\\quad|\\qquad|\\[,;!:]|[$()\\\[\].,;:]", r" \1", gap)
    return len(gap.split()) <= _CONNECTOR_WORDS


def box_group(text: str) -> tuple[int, int, str] | None:
    """(start, end, content) of the last box, joined with the boxes right before it when only a few words
    separate them."""
    spans = boxed_spans(text)
    if not spans:
        return None
    group = [spans[-1]]
    for span in reversed(spans[:-1]):
        if not _gap_is_connector(text[span[1] : group[0][0]]):
            break
        group.insert(0, span)
    contents = [c for _, _, c in group]
    # The same value boxed twice ("\boxed{840} ... \boxed{840}") is one answer, not the set {840, 840}.
    joined = contents[0] if len(set(contents)) == 1 else ", ".join(contents)
    return group[-1][0], group[-1][1], joined


def last_box_group(text: str) -> tuple[int, str] | None:
    """(where the last box starts, the content of its group): see `box_group`."""
    group = box_group(text)
    return None if group is None else (group[0], group[2])


def window_inside_a_box(response: str, window: int) -> bool:
    """Does the searched tail (the last `window` characters) start inside a box opened before it?"""
    start = len(response) - window
    opener = max(response.rfind("\\boxed", 0, start), response.rfind("\\fbox", 0, start))
    if opener < 0:
        return False
    brace = response.find("{", opener)
    return brace >= 0 and (brace >= start or not 0 <= balanced_end(response, brace) < start)


# Code and tool traffic: fenced blocks (```python, ```output: ToRA / Qwen2.5-Math tool-integrated reasoning),
# tool-call tags (Hermes/Qwen <tool_call>, <tool_response>; Llama 3.1 <|python_tag|> up to <|eom_id|>).
# An unclosed one (a response cut off inside its code) runs to the end of the text.
_TOOL_BLOCK = re.compile(
    r"```.*?(?:```|\Z)"
    r"|<(tool_call|tool_response)>.*?(?:</\1>|\Z)"
    r"|<\|python_tag\|>.*?(?:<\|eom_id\|>|<\|eot_id\|>|\Z)",
    re.DOTALL,
)


def mask_code(text: str) -> tuple[str, int]:
    """The text with every code block, tool call and tool output blanked out (same length, so positions
    hold), and where the last of them ends (0: none). Numbers inside code are not final answers: a
    tolerance constant (``rel_tol=1e-9``) or a printed check is not what the response states. A fence that
    opens inside a box is part of the boxed answer and stays."""
    if "```" not in text and "<tool_" not in text and "<|python_tag|>" not in text:
        return text, 0  # the common case, found at memchr speed
    blocks = list(_TOOL_BLOCK.finditer(text))
    if not blocks:
        return text, 0
    boxes = boxed_spans(text)  # in order, never nested: the one before a fence is found by bisection
    starts = [start for start, _, _ in boxes]
    last_end = 0
    parts: list[str] = []
    pos = 0
    for match in blocks:
        box = bisect.bisect_left(starts, match.start()) - 1
        if box >= 0 and match.start() < boxes[box][1]:
            continue
        parts += [text[pos : match.start()], re.sub(r"[^\n]", " ", match.group())]
        pos = last_end = match.end()
    parts.append(text[pos:])
    return "".join(parts), last_end
