"""The README's generated parts: the algorithm catalogue and each algorithm's settings table.

They are written from the registry and the settings models, so the README says exactly what
the validator accepts. `python -m mprl.docs README.md` rewrites the blocks between
`<!-- mprl:NAME -->` and `<!-- /mprl:NAME -->` markers; tests/test_docs.py fails when a block
is stale.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def catalogue_table() -> str:
    from mprl.catalogue import CATALOGUE

    rows = ["| name | paradigms (default first) | what | paper |", "|---|---|---|---|"]
    for e in CATALOGUE.values():
        paradigms = [e.paradigm, *(p for p in e.paradigms if p != e.paradigm)]
        rows.append(f"| `{e.name}` | {', '.join(paradigms)} | {e.description} | {e.paper} |")
    return "\n".join(rows)


def settings_table(name: str) -> str:
    from mprl.catalogue import get_algorithm

    rows = ["| setting | type | default | meaning |", "|---|---|---|---|"]
    for setting, kind, default, meaning in get_algorithm(name).settings.table():
        rows.append(f"| `{setting}` | {kind.replace('|', chr(92) + '|')} | `{default}` | {meaning.replace('|', chr(92) + '|')} |")
    return "\n".join(rows)


def blocks() -> dict[str, str]:
    from mprl.catalogue import CATALOGUE

    out = {"catalogue": catalogue_table()}
    out.update({f"settings:{name}": settings_table(name) for name in CATALOGUE})
    return out


_BLOCK = re.compile(r"(<!-- mprl:(?P<name>[\w:]+) -->\n)(?P<body>.*?)(<!-- /mprl:(?P=name) -->)", re.S)


def render(text: str) -> str:
    """`text` with every generated block brought up to date (unknown block names are left as they are)."""
    generated = blocks()
    def fill(m: re.Match) -> str:
        name = m.group("name")
        return m.group(1) + (generated[name] + "\n" if name in generated else m.group("body")) + m.group(4)

    return _BLOCK.sub(fill, text)


def block_names(text: str) -> list[str]:
    return [m.group("name") for m in _BLOCK.finditer(text)]


def main(argv: list[str] | None = None) -> int:
    path = Path((argv or sys.argv[1:] or ["README.md"])[0])
    path.write_text(render(path.read_text()))
    print(f"updated the generated blocks of {path}: {', '.join(block_names(path.read_text()))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
