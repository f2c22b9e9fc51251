"""The documentation's tables that mirror code or data, generated: never kept equal by hand.

A Markdown file marks a generated table with `<!-- generated: NAME -->` and `<!-- end: NAME -->`;
`python -m lwsbuild.cli.tables write FILE...` refreshes them in place, `check FILE...` exits 1
naming the stale ones (tests/test_docs.py runs it over README.md and docs/).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["TABLES", "main", "refresh"]  # the public surface (lwsbuild/__init__.py)


def commands() -> str:
    """Every command of `lwsbuild`, with its help: from the parser itself."""
    from lwsbuild.cli.main import _parser

    parser = _parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    rows = ["| command | what it does |", "|---|---|"]
    rows += [f"| `lwsbuild {choice.dest}` | {choice.help} |" for choice in sub._choices_actions]
    return "\n".join(rows)


def exit_codes() -> str:
    from lwsbuild import errors

    return errors.table()


def settings() -> str:
    from lwsbuild.common import settings as model

    return model.table()


def variants() -> str:
    from lwsbuild.build import variants as model

    common = model.get(model.DEFAULT).cmake.keys() - model._data()["variant"][model.DEFAULT]["cmake"].keys()
    rows = ["| variant | sanitizer | its options (beside every variant's) | stripped | what it is |", "|---|---|---|---|---|"]
    for name in model.names():
        variant = model.get(name)
        own = ", ".join(f"`{k}={v}`" for k, v in variant.cmake.items() if k not in common)
        rows.append(f"| `{name}` | {variant.sanitizer_name or '-'} | {own} | {'yes' if variant.strip else 'no'} | "
                    f"{variant.description} |")
    shared = ", ".join(f"`{k}={v}`" for k, v in model.get(model.DEFAULT).cmake.items() if k in common)
    return "\n".join(rows + ["", f"Every variant: {shared}."])


def fixes() -> str:
    from lwsbuild.series import fixes as series

    rows = ["| id | sets | fix | what it is per release line |", "|---|---|---|---|"]
    for fix in series.select(series.ALL).fixes:
        lines = "; ".join(f"{line.form if not line.upstream else 'upstream ' + line.upstream} "
                          f"{line.versions.replace(' - ', '–')}".replace("not-needed", "not needed")
                          for line in fix.lines)
        rows.append(f"| {fix.id} | {', '.join(fix.sets) or 'all'} | {fix.title} | {lines} |")
    return "\n".join(rows)


def profiles() -> str:
    from lwsbuild.stress import profiles as model

    rows = ["| profile | schedule | flags |", "|---|---|---|"]
    for name in model.names():
        named = model.get(name)
        flags = " ".join(named.profile.argv()) or "the harness's defaults"
        rows.append(f"| `{name}` | {named.description} | `{flags}` |" if named.profile.flags
                    else f"| `{name}` | {named.description} | {flags} |")
    return "\n".join(rows)


def harness_flags() -> str:
    from lwsbuild.build import harness

    rows = ["| flag | default | accepted | what it does |", "|---|---|---|---|"]
    for flag in harness.options():
        accepted = (" or ".join(flag.choices) if flag.choices else
                    f"{flag.low:g} to {flag.high:g}" if flag.low is not None and flag.high is not None else "text")
        rows.append(f"| `{flag.flag} {flag.metavar}` | {flag.shown_default} | {accepted} | {flag.help} |")
    return "\n".join(rows)


TABLES: dict[str, Callable[[], str]] = {"commands": commands, "exit-codes": exit_codes, "settings": settings,
                                         "variants": variants, "fixes": fixes, "profiles": profiles,
                                         "harness-flags": harness_flags}
_MARKED = re.compile(r"(<!-- generated: ([a-z-]+) -->\n)(.*?)(<!-- end: \2 -->)", re.DOTALL)


def refresh(text: str) -> str:
    """`text` with every marked table generated anew."""
    def one(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in TABLES:
            raise SystemExit(f"unknown generated table {name!r} (known: {', '.join(TABLES)})")
        return f"{match.group(1)}{TABLES[name]()}\n{match.group(4)}"

    return _MARKED.sub(one, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lwsbuild.cli.tables", description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("check", "write"))
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    stale = []
    for path in args.files:
        text = path.read_text()
        fresh = refresh(text)
        if fresh != text:
            stale.append(str(path))
            if args.mode == "write":
                path.write_text(fresh)
    if stale and args.mode == "check":
        print(f"stale generated tables in {', '.join(stale)}: run python -m lwsbuild.cli.tables write "
              f"{' '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
