"""Every setting of a build, declared once: its request field, option, -C key, environment variable, default and help.

This table is the one place a build's inputs are declared. From it come the command line's option
groups (`add_arguments`), the pip backend's `-C lwsbuild.*` keys (configsettings.py), the reading of
the environment (`resolve`: an option or -C key given wins, then the variable, then the default),
the command line that gives a request back (`argv`, what `--check-reproducible` and `verify` run
again) and the documentation's settings table (`python -m lwsbuild.common.settings`, generated into docs/settings.md).
request.BuildRequest has one field per setting (a test checks that too). A setting `in_key` is part
of the build key and recorded in provenance.json; the others change where the bytes come from or
how the cache is checked, never which bytes are built.

Anything else in the caller's environment does not reach a build (lwsbuild/build/environment.py).

Standard library only, and no dataclasses: `lwsbuild --help` builds its parser from this table and
pip's isolated build environment imports it.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from lwsbuild.errors import BadSettingError

__all__ = ["SETTINGS", "Setting", "table"]  # the public surface (lwsbuild/__init__.py)

# The data modules' values, here without importing them (tests/test_request.py keeps them equal).
ALL_SERIES = "all"  # series.ALL
DEFAULT_VARIANT = "release"  # variants.DEFAULT
DEFINE = "-D"  # the one option that is not --NAME


class Setting(NamedTuple):
    name: str  # the BuildRequest field and the argparse dest
    group: str  # the command line's option group: "source", "fix series" or "build"
    kind: str  # text | flag (boolean) | list (repeatable) | defines (repeatable LWS_NAME=VALUE) | words (shell words)
    option: str  # on the command line
    key: str  # the -C config-setting (pip, python -m build, cibuildwheel); for defines, the key's prefix
    env: str  # the environment variable read when neither the option nor the key is given ("": none)
    default: str  # as the help and the docs say it
    metavar: str
    help: str
    in_key: bool  # part of the build key and of provenance.json

    def given(self, value: object) -> bool:
        """Whether a parsed command line or -C mapping set this setting (None and [] are 'not given')."""
        return value is not None and value != [] and value is not False


SETTINGS: tuple[Setting, ...] = (
    Setting("version", "source", "text", "--lws-version", "lwsbuild.version", "LWSBUILD_VERSION",
            "releases.toml's default", "V", "libwebsockets release", True),
    Setting("sources", "source", "list", "--source", "lwsbuild.source", "", "the pin's mirror list", "SPEC",
            "mirror to use, repeatable, tried in order: git+URL[@REF], archive:URL|PATH[#sha256=HEX], dir:PATH, "
            "debian (the tree id is the identity, whichever mirror delivers it)", False),
    Setting("allow_unpinned", "source", "flag", "--allow-unpinned", "lwsbuild.allow-unpinned",
            "LWSBUILD_ALLOW_UNPINNED", "off", "", "accept a version or tree outside the pins (marked UNPINNED "
            "everywhere; the tree id is in the build key either way)", False),
    Setting("refresh", "source", "flag", "--refresh", "lwsbuild.refresh", "", "off", "",
            "ask the mirrors even when the pinned tree is cached, and check every cache entry used in full "
            "(tree ids and file hashes, not only sizes and times)", False),
    Setting("series", "fix series", "text", "--series", "lwsbuild.series", "LWSBUILD_SERIES", ALL_SERIES, "S",
            "named fix set: all, seed (the original four), security, none; minus sets or fix ids: all-throughput",
            True),
    Setting("unfixed", "fix series", "flag", "--unfixed", "lwsbuild.unfixed", "LWSBUILD_UNFIXED", "off", "",
            "build the bug: apply nothing and revert the fixes upstream already carries (marked UNFIXED)", True),
    Setting("variant", "build", "text", "--variant", "lwsbuild.variant", "LWSBUILD_VARIANT", DEFAULT_VARIANT, "NAME",
            "a variant `lwsbuild variants` lists", True),
    Setting("defines", "build", "defines", DEFINE, "lwsbuild.define.", "", "none", "LWS_NAME=VALUE",
            "further libwebsockets CMake option, repeatable (e.g. -D LWS_WITH_HTTP2=OFF); the -C key is "
            "lwsbuild.define.LWS_NAME=VALUE", True),
    Setting("cc", "build", "text", "--cc", "lwsbuild.cc", "CC", "cc", "PROGRAM",
            "the C compiler (a name on PATH or a path); its path and version are recorded", True),
    Setting("extra_cflags", "build", "words", "--extra-cflags", "lwsbuild.extra-cflags", "CFLAGS", "none", "FLAGS",
            "compiler flags added after the variant's, as shell words (no -fsanitize: the variant decides)", True),
    Setting("extra_ldflags", "build", "words", "--extra-ldflags", "lwsbuild.extra-ldflags", "LDFLAGS", "none", "FLAGS",
            "linker flags of the library and the programs, as shell words (no -fsanitize)", True),
)
BY_NAME = {setting.name: setting for setting in SETTINGS}
GROUPS = ("source", "fix series", "build")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def boolean(text: str, where: str) -> bool:
    """A flag's value from -C or the environment: true/false, 1/0, yes/no, on/off (ASCII, any case)."""
    folded = text.strip().lower() if text.isascii() else None
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise BadSettingError(f"{where}={text!r} is not a boolean", hint=f"use {where}=true or {where}=false "
                                                                  "(also 1/0, yes/no, on/off)")


# --- the command line ----------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser, groups: Iterable[str] = GROUPS,
                  variant_default: str = DEFAULT_VARIANT, only: Iterable[str] | None = None) -> None:
    """The options of `groups` (or of the settings named in `only`); nothing is defaulted here
    (None = not given: `resolve` fills it), so a command can tell a build asked for from none
    (`smoke`, `config`)."""
    wanted = list(groups)
    chosen = set(only) if only is not None else {s.name for s in SETTINGS}
    for group_name in GROUPS:
        if group_name not in wanted:
            continue
        group = parser.add_argument_group(group_name)
        for setting in (s for s in SETTINGS if s.group == group_name and s.name in chosen):
            default = variant_default if setting.name == "variant" else setting.default
            env = f"; env {setting.env}" if setting.env else ""
            text = f"{setting.help} (default: {default}{env})"
            if setting.kind == "flag":
                group.add_argument(setting.option, dest=setting.name, action="store_const", const=True, help=text)
            elif setting.kind in ("list", "defines"):
                group.add_argument(setting.option, dest=setting.name, action="append", metavar=setting.metavar,
                                   help=text)
            else:
                group.add_argument(setting.option, dest=setting.name, metavar=setting.metavar, help=text)


def given_on_command_line(args: argparse.Namespace, groups: Iterable[str] = GROUPS) -> list[str]:
    """The options of `groups` the command line gave (`smoke` and `config` build only when one is)."""
    given = vars(args)
    return [s.option for s in SETTINGS if s.group in groups and s.given(given.get(s.name))]


# --- every source, one reader --------------------------------------------------------------------

def from_environment(environ: Mapping[str, str]) -> dict[str, object]:
    """The settings the environment gives (empty variables count as unset), parsed by kind."""
    found: dict[str, object] = {}
    for setting in SETTINGS:
        text = environ.get(setting.env, "") if setting.env else ""
        if not text:
            continue
        found[setting.name] = boolean(text, setting.env) if setting.kind == "flag" else text
    return found


def resolve(given: Mapping[str, object], environ: Mapping[str, str]) -> dict[str, object]:
    """Each setting's value: what the command line (or -C) gave, else its environment variable's, else
    None (the request's default applies). `given` holds argparse's values by setting name."""
    from_env = from_environment(environ)
    values: dict[str, object] = {}
    for setting in SETTINGS:
        value = given.get(setting.name)
        values[setting.name] = value if setting.given(value) else from_env.get(setting.name)
    return values


def argv(values: Mapping[str, object]) -> list[str]:
    """The command-line options that give `values` back through `resolve` in an environment without
    the settings' variables (`--option=value`, so a value starting with "-" is not read as an option)."""
    args: list[str] = []
    for setting in SETTINGS:
        value = values.get(setting.name)
        if value is None or value is False or value == "" or value == ():
            continue
        if setting.kind == "flag":
            args.append(setting.option)
        elif setting.kind == "list":
            args += [f"{setting.option}={item}" for item in value]  # type: ignore[attr-defined]
        elif setting.kind == "defines":
            args += [f"{DEFINE}{name}={item}" for name, item in value]  # type: ignore[attr-defined]
        elif setting.kind == "words":
            import shlex

            args.append(f"{setting.option}={shlex.join(value)}")  # type: ignore[arg-type]
        else:
            args.append(f"{setting.option}={value}")
    return args


def without_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without any setting's variable: for a child lwsbuild given every setting explicitly."""
    names = {s.env for s in SETTINGS if s.env}
    return {name: value for name, value in environ.items() if name not in names}


# --- the documentation's table --------------------------------------------------------------------

def table() -> str:
    """The settings as Markdown: docs/settings.md's generated table (lwsbuild/cli/tables.py)."""
    rows = ["| setting | command line | `-C` (pip, build, cibuildwheel) | environment | default | in the build key |",
            "|---|---|---|---|---|---|"]
    for s in SETTINGS:
        option = f"`{s.option} {s.metavar}`" if s.metavar and s.kind != "defines" else f"`{s.option}`"
        if s.kind == "defines":
            option, key = f"`{DEFINE} {s.metavar}`", f"`{s.key}LWS_NAME=VALUE`"
        elif s.kind == "flag":
            key = f"`{s.key}=true`"
        else:
            key = f"`{s.key}={s.metavar}`" + (" (repeat `-C`)" if s.kind == "list" else "")
        rows.append(f"| {s.name} | {option} | {key} | {f'`{s.env}`' if s.env else '-'} | {s.default} | "
                    f"{'yes' if s.in_key else 'no'} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
