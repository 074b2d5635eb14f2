"""``mue-eval lm-eval [--only-ours] [--judge MODEL ...] LM_EVAL_ARGS``: lm-eval's CLI with our tasks added.

lm-eval parses its own arguments; ours are taken out first. The judge options are those of ``mue-eval
run`` (every grading role's `mathusereval.run.roles.RoleOptions` and ``--batch-*``) and reach the judge filter
inside lm-eval as ``$MUE_JUDGE*`` (``$MUE_VERIFIER*``, ``$MUE_BATCH*``) variables.
"""

from __future__ import annotations

import os

from ..errors import ConfigError

HELP = """usage: mue-eval lm-eval [--only-ours] [--judge MODEL [--judge-base-url URL] ...] LM_EVAL_ARGS...

lm-evaluation-harness's own CLI with mathusereval's tasks added (mathusereval_gsm8k, mathusereval_math,
mathusereval_math500, mathusereval_mathusereval, mathusereval_alignbench, the group mathusereval, the tag
mathusereval_judged); everything else is lm-eval's (see `mue-eval lm-eval run --help`).

our options (taken out before lm-eval sees the rest):
  --only-ours           index only our task YAMLs, not lm-eval's ~14,000 (2 s instead of 20 s)
{judge}
Data comes from --metadata '{{"data_dir": DIR}}', $MUE_DATA_DIR, or the pinned official download; judge
replies are cached in $MUE_JUDGE_CACHE (default ~/.cache/mathusereval/lm-eval-judge).
"""


def _judge_flags() -> dict[str, tuple[str, bool]]:
    """``--judge-base-url`` -> (its variable, whether it is a switch without a value)."""
    from ..run.role_settings import env_fields

    return {
        "--" + name[len("MUE_") :].lower().replace("_", "-"): (name, str(field.type).startswith("bool"))
        for name, field in env_fields().items()
    }


def run(argv: list[str]) -> int:
    from ..lmeval import run_lm_eval
    from ..run.role_settings import GradingOptions

    args = list(argv)
    if not args or args[0] in ("-h", "--help"):
        flags = "\n".join(f"  {flag}{'' if switch else ' VALUE'}" for flag, (_, switch) in _judge_flags().items())
        print(HELP.format(judge="judge options, as for `mue-eval run` (the judged tasks' judge):\n" + flags + "\n"))
        return 0
    only_ours = "--only-ours" in args
    if only_ours:
        args.remove("--only-ours")
    for flag, (name, switch) in _judge_flags().items():
        values: list[str] = []
        while flag in args:  # a repeated flag (--judge-header) keeps every value, one a line
            at = args.index(flag)
            if switch:
                values.append("1")
                del args[at]
                continue
            if at + 1 >= len(args):
                raise ConfigError(f"{flag} needs a value")
            values.append(args[at + 1])
            del args[at : at + 2]
        if values:
            os.environ[name] = "\n".join(values) if name.endswith("_HEADER") else values[-1]
    GradingOptions.from_env()  # a bad value is said now, not inside lm-eval's filter
    return run_lm_eval(args, only_ours)
