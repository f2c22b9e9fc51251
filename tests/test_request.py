"""The build request: one typed value per settings.py's table, from the command line, -C and the
environment and back, and a package without import cycles."""

from __future__ import annotations

import ast
import dataclasses
import itertools

import pytest

from conftest import REPO
from lwsbuild.build import variants
from lwsbuild.cli import main as cli
from lwsbuild.common import settings
from lwsbuild.errors import BadDefineError, BadSettingError
from lwsbuild.request import BuildRequest
from lwsbuild.series import fixes as series
from lwsbuild.wheel import configsettings

PACKAGE = REPO / "lwsbuild"

# Between them, every field set away from its default (checked below: a new field must appear here).
REQUESTS = [
    BuildRequest(),
    BuildRequest(version="4.3.3", variant="asan", series="seed"),
    BuildRequest(unfixed=True, variant="tsan", defines=(("LWS_WITH_HTTP2", "OFF"), ("LWS_MAX_SMP", "16"))),
    BuildRequest(version="5.0.0", sources=("dir:/tmp/lws tree", "-odd:spec", "archive:/x.tar.gz#sha256=00"),
                 allow_unpinned=True, refresh=True, series="none"),
    # values argparse or CMake could take for something else: a leading "-", "=", spaces, brackets
    BuildRequest(defines=(("LWS_X", "-D LWS_Y=1"), ("LWS_Z", "a=b ]==] c"), ("LWS_EMPTY", ""))),
    # shell words that need quoting, a compiler by path
    BuildRequest(cc="/usr/bin/gcc", extra_cflags=("-O2", "-DX=a b", "-I/x y"), extra_ldflags=("-Wl,-z,norelro",)),
]


def _parsed(command: str, argv: list[str]) -> BuildRequest:
    return BuildRequest.from_args(cli._parser().parse_args([command, *argv]))


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: " ".join(r.argv()))
def test_argv_gives_the_same_request_back(request_: BuildRequest) -> None:
    # `wheel` is what --check-reproducible runs again; `build` and `stress` take the same options.
    for command in ("wheel", "build", "stress"):
        assert _parsed(command, request_.argv()) == request_, command


def test_every_field_is_exercised_by_the_round_trip() -> None:
    default = BuildRequest()
    for field in dataclasses.fields(BuildRequest):
        assert any(getattr(r, field.name) != getattr(default, field.name) for r in REQUESTS), (
            f"no request above sets {field.name}: add one, so argv() and from_args() are checked for it")


def test_every_setting_is_a_field_and_every_field_a_setting() -> None:
    assert [f.name for f in dataclasses.fields(BuildRequest)] == [s.name for s in settings.SETTINGS]


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: " ".join(r.argv()))
def test_config_settings_give_the_same_request(request_: BuildRequest) -> None:
    # What pip's -C lwsbuild.* keys ask for is the command line's request: one model, two spellings.
    config: dict[str, str | list[str]] = {}
    for setting in settings.SETTINGS:
        value = getattr(request_, setting.name)
        if value in (None, False, (), ""):
            continue
        if setting.kind == "defines":
            config.update({f"{setting.key}{name}": item for name, item in value})
        elif setting.kind == "list":
            config[setting.key] = list(value)
        elif setting.kind == "flag":
            config[setting.key] = "true"
        elif setting.kind == "words":
            config[setting.key] = " ".join(f"'{w}'" if " " in w else w for w in value)
        else:
            config[setting.key] = value
    argv = list(configsettings.split(config, {}).build.argv)
    assert _parsed("build", argv) == dataclasses.replace(request_, series=request_.series, variant=request_.variant)


def test_environment_variables_fill_what_the_command_line_leaves_unset() -> None:
    environ = {"LWSBUILD_VARIANT": "asan", "CC": "gcc", "CFLAGS": "-O1 -g", "LDFLAGS": "-Wl,-z,norelro",
               "LWSBUILD_UNFIXED": "yes", "LWSBUILD_SERIES": ""}  # empty: unset
    from_env = BuildRequest.from_args(cli._parser().parse_args(["build"]), environ)
    assert from_env == BuildRequest(variant="asan", cc="gcc", extra_cflags=("-O1", "-g"),
                                    extra_ldflags=("-Wl,-z,norelro",), unfixed=True)
    # The command line wins over the environment.
    given = BuildRequest.from_args(cli._parser().parse_args(["build", "--variant", "tsan", "--extra-cflags="]), environ)
    assert (given.variant, given.extra_cflags, given.cc) == ("tsan", (), "gcc")
    # A child given argv() in an environment without the settings' variables gets the same request.
    clean = settings.without_settings({**environ, "PATH": "/bin"})
    assert clean == {"PATH": "/bin"}
    assert BuildRequest.from_args(cli._parser().parse_args(["build", *from_env.argv()]), clean) == from_env


@pytest.mark.parametrize(("argv", "needle"), [
    (["--extra-cflags=-fsanitize=address"], "would instrument the build against its variant"),
    (["--extra-ldflags=-fno-sanitize=all"], "would instrument the build against its variant"),
    (["--extra-cflags=-O2 'unbalanced"], "is not a list of shell words"),
    (["--extra-cflags=-DX=a;b"], "is not printable ASCII without ';'"),
    (["--extra-cflags=-O\u00b2"], "is not printable ASCII"),
    (["--cc", "gcc\n"], "is not a program name or path"),
    (["--lws-version", "4.3.\uff15"], "is not a version number"),
])
def test_a_setting_that_would_build_something_else_than_recorded_is_refused(argv: list[str], needle: str) -> None:
    with pytest.raises(BadSettingError) as refused:
        _parsed("build", argv)
    assert needle in refused.value.one_line() and "\n" not in refused.value.one_line()


def test_an_environment_boolean_must_be_one() -> None:
    with pytest.raises(BadSettingError, match="LWSBUILD_UNFIXED='maybe' is not a boolean"):
        BuildRequest.from_args(cli._parser().parse_args(["build"]), {"LWSBUILD_UNFIXED": "maybe"})


def test_the_docs_carry_the_settings_table() -> None:
    assert settings.table() in (REPO / "docs" / "settings.md").read_text()


def test_every_field_has_a_docstring() -> None:
    tree = ast.parse((PACKAGE / "request.py").read_text())
    body = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "BuildRequest").body
    documented = {node.target.id for node, after in itertools.pairwise(body)
                  if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                  and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)}
    assert documented == {f.name for f in dataclasses.fields(BuildRequest)}


def test_the_command_line_is_read_as_the_user_wrote_it() -> None:
    request = _parsed("build", ["--lws-version", "v4.3.5", "-D", "LWS_A=1", "-D", "LWS_A=2", "--source", "debian"])
    assert request == BuildRequest(version="4.3.5", sources=("debian",), defines=(("LWS_A", "2"),))
    # A command that declares only some of the options: the others keep their defaults.
    assert _parsed("fetch", ["--refresh"]) == BuildRequest(refresh=True)
    assert _parsed("prove", []).variant == "asan"
    assert _parsed("build", ["--extra-cflags=-O2 -g", "--cc", "gcc"]) == BuildRequest(extra_cflags=("-O2", "-g"),
                                                                                       cc="gcc")
    # smoke and config build only when asked: no --variant is no build, not a release build.
    assert _parsed("smoke", []) == BuildRequest()
    with pytest.raises(BadDefineError):  # refused while parsing, before anything is fetched
        _parsed("build", ["-D", "CMAKE_C_FLAGS=-O0"])


def test_the_parser_defaults_are_the_data_modules_values() -> None:
    assert settings.DEFAULT_VARIANT == variants.DEFAULT == BuildRequest().variant
    assert settings.ALL_SERIES == series.ALL == BuildRequest().series
