"""Write the option table of ``mue-eval run`` into README.md (between its two markers), from the parser itself;
tests/test_role_options.py fails when the README's table is not what ``--help`` says."""

from __future__ import annotations

import sys
from pathlib import Path

BEGIN = "<!-- options: written by scripts/readme_options.py from `mue-eval run --help` -->\n"
END = "<!-- options end -->\n"


def table() -> str:
    from mathusereval.cli.options import option_table
    from mathusereval.cli.run import parser

    return option_table(parser())


def main() -> int:
    """Write the table; with ``--check``, only say whether README.md's table is current (exit 1 if not)."""
    readme = Path(__file__).resolve().parent.parent / "README.md"
    text = readme.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        print(f"{readme}: the markers are missing", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    shown, tail = rest.split(END, 1)
    if "--check" in sys.argv[1:]:
        current = shown == table()
        print(f"{readme}: the option table is {'current' if current else 'out of date'}")
        return 0 if current else 1
    readme.write_text(head + BEGIN + table() + END + tail, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
