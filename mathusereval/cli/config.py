"""``--config run.toml``: any option of ``mue-eval run`` in a file, with per-task generation settings.

```toml
model = "runs/ckpt-*"          # or models = ["a.gguf", {path = "b.gguf", step = 200}]
base_url = "http://127.0.0.1:8000/v1"
max_tokens = 1024              # an option's name, with _ or -
[judge]                        # a role's options: the fields of mathusereval.run.roles.RoleOptions
model = "gpt-4o"               # (judge_model = ... at the top level is the same)
base_url = "https://api.openai.com/v1"
[tasks.gsm8k]                  # the tasks to run, each with its own generation settings
max_tokens = 512
[tasks.math500]
```

Values become the parser's defaults, so a flag on the command line overrides the file. Every value is checked
as the flag's would be (its type, its choices, a number that is finite); an unknown key, a table for a task
that is not installed, or a value of the wrong type is an error naming the file and the key. Relative paths
in the file (models, data, out, prompts) are relative to the file's folder. A model's ``step`` (explicit,
for a sweep) is recorded in every manifest's configuration (``steps``).
"""

from __future__ import annotations

import argparse
import glob
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError

PER_TASK = {"temperature": float, "top_p": float, "max_tokens": int, "seed": int, "samples": int, "stop": list,
            "top_k": int, "min_p": float, "repetition_penalty": float}  # fmt: skip
"""What a ``[tasks.NAME]`` table may set, and each value's type."""
_DEST = {"samples": "n"}


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef,unused-ignore]
        except ModuleNotFoundError as exc:
            raise ConfigError("--config needs Python 3.11 (tomllib) or the tomli package") from exc
    try:
        with path.open("rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
            return data
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot be read ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        hint = ""
        if "declare ('tasks'" in str(exc):  # `tasks = [...]` and `[tasks.X]` in one file
            hint = "; the [tasks.NAME] tables choose the tasks: drop the `tasks = [...]` line"
        raise ConfigError(f"--config {path}: not valid TOML ({exc}){hint}") from exc


def _typed(path: Path, key: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is list and isinstance(value, str):
        return [value]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"--config {path}: {key} should be {kind.__name__}, got {type(value).__name__}")
    return value


def _per_task(path: Path, key: str, value: Any, kind: type) -> Any:
    """A ``[tasks.NAME]`` value, checked as the flag's would be (``samples``, ``max_tokens`` ... positive)."""
    import math

    value = _typed(path, key, value, kind)
    if kind is list and not all(isinstance(v, str) for v in value):
        raise ConfigError(f"--config {path}: {key} should be a list of strings")
    if kind is float and not math.isfinite(value):
        raise ConfigError(f"--config {path}: {key} must be a finite number, got {value}")
    if kind is int and key.rsplit(".", 1)[-1] in ("max_tokens", "samples", "top_k") and value <= 0:
        raise ConfigError(f"--config {path}: {key} must be positive, got {value}")
    return value


def apply_config(parser: argparse.ArgumentParser, path: Path) -> dict[str, dict[str, Any]]:
    """Set `parser`'s defaults from the file; return the per-task generation settings (``[tasks.NAME]``)."""
    data = _load_toml(path)
    actions = {a.dest: a for a in parser._actions if a.dest not in ("help", "config")}
    flags = {opt.lstrip("-").replace("-", "_"): a.dest for a in actions.values() for opt in a.option_strings}
    defaults: dict[str, Any] = {}
    per_task: dict[str, dict[str, Any]] = {}
    tasks = data.pop("tasks", None)
    if isinstance(tasks, dict):
        for name, settings in tasks.items():
            if not isinstance(settings, dict):
                raise ConfigError(f"--config {path}: tasks.{name} should be a table of generation settings")
            for key, value in settings.items():
                kind = PER_TASK.get(key.replace("-", "_"))
                if kind is None:
                    raise ConfigError(
                        f"--config {path}: tasks.{name}.{key} is not a per-task setting ({', '.join(PER_TASK)})"
                    )
                per_task.setdefault(name, {})[_DEST.get(key, key.replace("-", "_"))] = _per_task(
                    path, f"tasks.{name}.{key}", value, kind
                )
            per_task.setdefault(name, {})
        _check_task_names(path, list(tasks))
        defaults["tasks"] = ",".join(tasks)
    elif isinstance(tasks, list):
        defaults["tasks"] = ",".join(_typed(path, "tasks[]", t, str) for t in tasks)
    elif tasks is not None:
        defaults["tasks"] = _typed(path, "tasks", tasks, str)
    if "models" in data:
        names, steps = _models(path, _typed(path, "models", data.pop("models"), list))
        defaults["model"] = ",".join(names)
        if steps:
            defaults["steps"] = steps
    for role in _role_tables(data):  # [judge], [verifier], [batch]: their keys as role_key
        for key, value in data.pop(role).items():
            data[role if role != "batch" and key == "model" else f"{role}_{key}"] = value
    for key in PATHS:  # a path in the file means a path beside the file, not in the current directory
        if isinstance(data.get(key), str):
            parts = data[key].split(",") if key == "model" else [data[key]]
            data[key] = ",".join(_beside(path, part.strip(), must_exist=key != "out") for part in parts)
    for key, value in data.items():
        dest = flags.get(key.replace("-", "_"))
        if dest is None:
            raise ConfigError(f"--config {path}: {key} is not an option of mue-eval run")
        defaults[dest] = _value(path, key, value, actions[dest])
    parser.set_defaults(**defaults)
    return {name: dict(settings) for name, settings in per_task.items()}


def _check_task_names(path: Path, names: list[str]) -> None:
    """A ``[tasks.NAME]`` table names an installed task or group (a misspelt one would be ignored)."""
    from ..plugins import registry

    known = set(registry.names("tasks")) | set(registry.names("groups"))
    for name in names:
        if name not in known:
            raise ConfigError(f"--config {path}: [tasks.{name}]: no such task (see `mue-eval tasks`)")


def _role_tables(data: dict[str, Any]) -> list[str]:
    from ..run.roles import grading_roles

    return [k for k in (*grading_roles(), "batch") if isinstance(data.get(k), dict)]


def _value(path: Path, key: str, value: Any, action: argparse.Action) -> Any:
    """`value` as the flag's parser would take it: a switch is a bool, a list is strings, a number goes
    through the flag's own type (finite floats) and choices are the flag's."""
    if isinstance(action, argparse._StoreTrueAction):
        return _typed(path, key, value, bool)
    if isinstance(action, argparse._AppendAction):
        items = _typed(path, key, value, list)
        for item in items:
            if not isinstance(item, str):
                raise ConfigError(f"--config {path}: {key} should be a list of strings, got {item!r}")
        if action.choices is not None and any(item not in action.choices for item in items):
            raise ConfigError(f"--config {path}: {key} must be among {', '.join(map(str, action.choices))}")
        return items
    kind = action.type if callable(action.type) else str
    if kind is not str:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"--config {path}: {key} should be a number, got {type(value).__name__}")
        try:
            value = kind(str(value))
        except (ValueError, argparse.ArgumentTypeError) as exc:
            raise ConfigError(f"--config {path}: {key}: {exc}") from None
    elif not isinstance(value, str):
        raise ConfigError(f"--config {path}: {key} should be a string, got {type(value).__name__}")
    if action.choices is not None and value not in action.choices:
        raise ConfigError(f"--config {path}: {key} must be one of {', '.join(map(str, action.choices))}, got {value!r}")
    return value


PATHS = ("model", "data_dir", "data-dir", "out", "sample_ids", "sample-ids", "chat_template", "chat-template",
         "system_prompt", "system-prompt", "sweep_x", "sweep-x", "board")  # fmt: skip
"""Options whose value is a file or folder: relative ones resolve against the config file's folder."""


def _beside(config: Path, value: str, must_exist: bool = True) -> str:
    """`value` relative to the config file's folder, when it is a relative path (for a model: one that
    exists there, so a served model's name stays a name; ``@FILE`` for prompts)."""
    at = value.startswith("@")
    text = value[1:] if at else value
    if not text or Path(text).is_absolute():
        return value
    resolved = os.path.normpath(os.path.join(os.path.abspath(config.parent), text))
    if must_exist and not (os.path.exists(resolved) or glob.glob(resolved)):
        return value
    return ("@" if at else "") + resolved


def _models(config: Path, models: list[Any]) -> tuple[list[str], dict[str, int]]:
    """``models = ["a.gguf", {path = "ckpt/b.gguf", step = 200}]``: the model names (paths beside the file)
    and the steps given explicitly (a sweep's x where names carry no step, or carry another number)."""
    names, steps = [], {}
    for k, entry in enumerate(models):
        if isinstance(entry, dict):
            unknown = set(entry) - {"path", "model", "step"}
            model, step = entry.get("path", entry.get("model")), entry.get("step")
            if unknown or not isinstance(model, str):
                raise ConfigError(f'--config {config}: models[{k}] should be {{path = "...", step = N}}')
            if step is not None and (not isinstance(step, int) or isinstance(step, bool) or step < 0):
                raise ConfigError(f"--config {config}: models[{k}].step should be a whole number >= 0")
        elif isinstance(entry, str):
            model, step = entry, None
        else:
            raise ConfigError(
                f"--config {config}: models[{k}] should be a string or a table, got {type(entry).__name__}"
            )
        name = _beside(config, model)
        names.append(name)
        if step is not None:
            steps[name] = step
    return names, steps


def config_path(argv: list[str]) -> Path | None:
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--config="):
            return Path(arg.split("=", 1)[1])
    return None
