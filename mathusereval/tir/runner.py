"""What runs inside the sandbox: one model-written program, as Qwen2.5-Math's executor runs it.

Passed to ``python -I -S -X utf8 -c`` by the launcher (standard library only; the scientific packages'
directories come as arguments, since ``-S`` leaves site-packages off the path). The program arrives on
stdin. Semantics of QwenLM/Qwen2.5-Math @a45202bd ``evaluation/python_executor.py``
(``PythonExecutor.execute`` with ``auto_mode=True``, ``GenericRuntime.exec_code``):

- the code is ``strip()``-ed and split into lines; a fresh, empty globals dict (so ``__name__`` is not
  ``"__main__"`` there either);
- ``input(`` anywhere in the executed part raises ``RuntimeError()``;
- when the last line contains ``print(``, the whole program runs and its stdout is the result;
- otherwise every line but the last runs (its prints are lost, as upstream's went to the worker's own
  stdout) and the last line is evaluated: ``str()`` of the value is the result, after the same
  ``pickle.dumps`` check upstream makes;
- any exception (``SystemExit`` too: upstream's bare ``except``) ends the program with the traceback on
  stderr and exit status 1; the harness reports its last line, as upstream's ``.split('\\n')[-2]``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

SOURCE_LIMIT = 1 << 20


@contextlib.contextmanager
def _stdout_discarded() -> Iterator[None]:
    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _exec(code: str, scope: dict[str, object]) -> None:
    import re

    if re.search(r"(\s|^)?input\(", code):
        raise RuntimeError()
    exec(code, scope)


def main() -> None:
    sys.path[:] = [p for p in sys.path if p not in ("", ".")] + sys.argv[1:]
    source = sys.stdin.buffer.read(SOURCE_LIMIT).decode("utf-8", "replace")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    lines = source.strip().split("\n")
    scope: dict[str, object] = {}
    try:
        if "print(" in lines[-1]:
            _exec("\n".join(lines), scope)
        else:
            with _stdout_discarded():
                _exec("\n".join(lines[:-1]), scope)
            value = eval(lines[-1], scope)  # noqa: S307 - the sandboxed program itself, as upstream evaluates it
            text = str(value)
            import pickle

            pickle.dumps(value)  # upstream's serialization check: an unpicklable value is an error there
            sys.stdout.write(text)
        sys.stdout.flush()
    except BaseException:  # noqa: BLE001 - upstream's bare except: every failure is the program's error text
        import traceback

        with contextlib.suppress(Exception):
            sys.stdout.flush()
        with contextlib.suppress(Exception):
            sys.stderr.write(traceback.format_exc())
            sys.stderr.flush()
        os._exit(1)
    os._exit(0)


if __name__ == "__main__":
    main()
