"""``--model A,B`` and ``--model 'runs/ckpt-*'``: the models of a sweep, each evaluated as its own run."""

from __future__ import annotations

import argparse
import glob
import re

from ..errors import MueError

_GLOB = re.compile(r"[*?]")


def step_key(name: str) -> tuple[object, ...]:
    """Natural order: ``ckpt-200`` before ``ckpt-1200`` (numbers compare as numbers)."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def expand_models(text: str) -> list[str]:
    """A comma list of models, each a name, a path or a glob; a glob's matches in natural order. A glob that
    matches nothing is an error (it is a typo, not an empty sweep)."""
    models: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        matches = sorted(glob.glob(item), key=step_key) if _GLOB.search(item) or "[" in item else []
        if _GLOB.search(item) and not matches:
            raise MueError(f"--model {item}: the pattern matches no file or folder")
        if matches and not (len(matches) == 1 and matches[0] == item):
            models += matches
        else:
            models.append(item)  # a name or a path ("[" alone is a character of a served name)
    if not models:
        raise MueError("--model is empty")
    if len(set(models)) != len(models):
        raise MueError(f"--model names a model twice: {', '.join(sorted({m for m in models if models.count(m) > 1}))}")
    return models


ENGINES = (
    ("llamacpp", "llama_cpp", "a .gguf file, in process (llama-cpp-python)"),
    ("vllm", "vllm", "an HF model folder, in process or --serve (pip install 'mathusereval[vllm]')"),
    ("openai", "httpx", "any OpenAI-compatible server: --base-url URL --model NAME"),
    ("ray", "ray", "in-process engines as Ray replicas: --ray ADDRESS (pip install 'mathusereval[ray]')"),
)


def parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog="mue-eval models",
        description="List the embedded model and the engines (backends) this installation can run models on.",
    )


def run(args: argparse.Namespace) -> int:
    """``mue-eval models``: what ``--model`` can name here, without loading any engine."""
    from importlib.util import find_spec

    from ..backends.base import EMBEDDED_MODEL, embedded_gguf_path
    from ..errors import BackendUnavailable
    from ..plugins import registry

    try:
        path = embedded_gguf_path()
        embedded = f"{path} ({path.stat().st_size / 2**20:.0f} MiB), the default --model"
    except BackendUnavailable as exc:
        embedded = f"not installed: {exc}"
    print(f"embedded model:\n  {EMBEDDED_MODEL}: {embedded}\nengines (--backend NAME):")
    for name, module, what in ENGINES:
        state = "installed" if find_spec(module) is not None else "not installed"
        print(f"  {name:<9} {state:<14} {what}")
    plugins = [n for n in registry.names("backends") if n not in {e[0] for e in ENGINES}]
    for name in plugins:
        print(f"  {name:<9} {'plugin':<14} registered by a package or --include")
    return 0
