"""A ``--include`` plugin: a one-item tool-integrated task whose question asks the model to copy a program.

Under greedy decoding the tiny test model copies it, and with ``--max-tokens`` set to the program's token
count (`BLOCK`) its first reply is exactly the block: the harness runs it and asks the model to continue its
own reply after the output. So a real engine goes through a whole chain (program, output, continuation),
whichever backend serves it (Ray replicas, a vLLM server through the chat or completions endpoint).
"""

import mathusereval as mue
from mathusereval.tir.protocol import STOP, SYSTEM_PROMPT

BLOCK = "```python\nprint(6 * 7)\n```"
QUESTION = "Copy this text exactly, nothing else:\n" + BLOCK


def load(data_dir: object) -> mue.LoadedData:
    turns = ({"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": QUESTION})
    return mue.LoadedData([mue.Sample("tir-copy", "copy", turns, "42")], "3" * 64, "inline")


mue.register(
    "tasks",
    "tir-copy",
    mue.Task("tir-copy", "1", load, ("answer",), mue.accuracy, params=mue.GenerationParams(stop=STOP), tir=True),
)
