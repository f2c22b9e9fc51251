"""PEP 517 config-settings (`pip wheel . -C lwsbuild.version=4.3.5`) → the options of `lwsbuild build`.

pip, `python -m build` and cibuildwheel hand a build backend a flat mapping of `-C KEY=VALUE`
strings (a key given twice becomes a list). The project's backend (lwsbuild/wheel/backend.py) splits it
here: each `lwsbuild.*` key is a setting of lwsbuild/common/settings.py (docs/settings.md's table), and
becomes that setting's command-line option for the CMake project's entry point (`python -m
lwsbuild.request --write-spec FILE ...`), the request `lwsbuild build` and `lwsbuild wheel` plan
too: so a pip build and a CLI build of the same settings are the same build. The settings'
environment variables are read there, by the same code as on the command line. Values are checked
there too; this module checks only the shape (known keys, one value each, booleans), so a mistyped
key fails before anything is fetched.

What scikit-build-core would read itself is refused, except its logging and verbosity
(PASSED_THROUGH): `cmake.*`, `build-dir`, `wheel.*`, `install.*`, `skbuild.*`, ... would each
configure CMake or the wheel behind lwsbuild's back (a build directory with an old CMakeCache, a
toolchain file, other flags, no strip) without changing the build key or provenance.json. The
environment's equivalents (SKBUILD_*, CMAKE_ARGS, CMAKE_TOOLCHAIN_FILE) are refused by the backend
(environment.backend_refused).

Standard library and lwsbuild's settings/errors only: it runs inside pip's isolated build environment.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from lwsbuild.common import settings
from lwsbuild.errors import BadConfigSetting

PREFIX = "lwsbuild."
DEFINE_PREFIX = settings.BY_NAME["defines"].key  # "lwsbuild.define."
CMAKE_DEFINE_PREFIX = "cmake.define."  # scikit-build-core's spelling of an lws option: taken as lwsbuild.define.
# Declared in pyproject.toml ([tool.scikit-build.config-setting]): `lwsbuild wheel` passes the spec it
# wrote; scikit-build-core hands it to CMake. It names a whole build, so no other lwsbuild.* key goes with it.
SPEC_KEY = "lwsbuild.spec"
SPEC_ENV = "LWSBUILD_SPEC"
# scikit-build-core's own settings that change nothing a wheel holds: how much it says.
PASSED_THROUGH = ("logging.level", "build.verbose")

_BY_KEY = {s.key: s for s in settings.SETTINGS if s.kind != "defines"}
KEYS = (*_BY_KEY, f"{DEFINE_PREFIX}LWS_NAME", SPEC_KEY)
# What lwsbuild's -D accepts (lwsbuild/build/variants.py): lws's own options, nothing else.
_LWS_NAME = re.compile(r"LWS_[A-Z0-9_]+")
_HINT = ("choose the build with -C lwsbuild.version=V, lwsbuild.series=S, lwsbuild.variant=NAME, "
         "lwsbuild.define.LWS_NAME=VALUE, lwsbuild.cc=CC, lwsbuild.extra-cflags=FLAGS, ... (docs/settings.md)")

Settings = Mapping[str, str | list[str]]


@dataclass(frozen=True)
class PipBuild:
    """What a pip build's config-settings ask for, as `lwsbuild build` options."""

    argv: tuple[str, ...]  # e.g. ("--lws-version=4.3.5", "--variant=asan", "-DLWS_WITH_HTTP2=OFF")
    spec: str | None  # a spec written by lwsbuild (lwsbuild.spec / LWSBUILD_SPEC): build that, plan nothing


@dataclass(frozen=True)
class Split:
    build: PipBuild
    skbuild: dict[str, str | list[str]]  # the settings left for scikit-build-core (PASSED_THROUGH only)


def _one(key: str, value: str | list[str]) -> str:
    if isinstance(value, list):
        if len(value) != 1:
            raise BadConfigSetting(f"config-setting {key} was given {len(value)} times ({', '.join(value)})",
                                   hint=f"give -C {key}=VALUE once")
        return value[0]
    return value


def _unknown(key: str) -> BadConfigSetting:
    known = [*_BY_KEY, SPEC_KEY, DEFINE_PREFIX]
    close = difflib.get_close_matches(key, known, n=1)
    guess = f" (did you mean {close[0]}?)" if close else ""
    return BadConfigSetting(f"unknown config-setting {key}{guess}",
                            hint=f"lwsbuild's settings are {', '.join(KEYS)} (docs/settings.md)")


def _define(key: str, name: str, value: str) -> str:
    if not _LWS_NAME.fullmatch(name):
        raise BadConfigSetting(f"config-setting {key}: {name!r} is not a libwebsockets option (LWS_*)",
                               hint="pass lws options as -C lwsbuild.define.LWS_NAME=VALUE")
    return f"{settings.DEFINE}{name}={value}"


def _refused(key: str) -> BadConfigSetting:
    """Why a scikit-build-core setting (or one of lwsbuild's CMake variables) is not taken."""
    name = key.removeprefix(CMAKE_DEFINE_PREFIX)
    if key.startswith(CMAKE_DEFINE_PREFIX) and name.startswith("LWSBUILD_"):
        return BadConfigSetting(f"config-setting {key}: {name} is lwsbuild's own CMake variable, written by "
                                "its backend from the lwsbuild.* settings", hint="select the variant with "
                                "-C lwsbuild.variant=NAME, and the rest with lwsbuild.version=V, lwsbuild.series=S, "
                                "lwsbuild.unfixed=true or lwsbuild.define.LWS_NAME=VALUE")
    if key == f"{CMAKE_DEFINE_PREFIX}CMAKE_C_COMPILER":
        return BadConfigSetting(f"config-setting {key}: lwsbuild records the compiler it builds with in "
                                "provenance.json", hint="pass -C lwsbuild.cc=/path/to/cc (or set CC) instead")
    return BadConfigSetting(f"config-setting {key} would configure scikit-build-core or CMake behind lwsbuild "
                            "(the build key and provenance.json would not record it)", hint=_HINT)


def split(config: Settings | None, environ: Mapping[str, str]) -> Split:
    """Separate lwsbuild's settings from scikit-build-core's; raise BadConfigSetting on anything
    lwsbuild cannot honour. Of the environment only LWSBUILD_SPEC is read here; the settings'
    variables are read where the command line's are (request.BuildRequest.from_args)."""
    given = dict(config or {})
    skbuild: dict[str, str | list[str]] = {}
    argv: list[str] = []
    chosen: list[str] = []  # the keys that select a build: they exclude a spec
    spec = _one(SPEC_KEY, given.pop(SPEC_KEY)) if SPEC_KEY in given else environ.get(SPEC_ENV)
    for key, item in given.items():
        setting = _BY_KEY.get(key)
        if setting is not None:
            chosen.append(key)
            if setting.kind == "list":
                argv += [f"{setting.option}={value}" for value in ([item] if isinstance(item, str) else item)]
            elif setting.kind == "flag":
                argv += [setting.option] if settings.boolean(_one(key, item), key) else []
            else:
                value = _one(key, item)
                if not value.strip():
                    raise BadConfigSetting(f"config-setting {key} is empty", hint=f"give a value: -C {key}=VALUE")
                argv.append(f"{setting.option}={value}")
        elif key.startswith(DEFINE_PREFIX):
            argv.append(_define(key, key.removeprefix(DEFINE_PREFIX), _one(key, item)))
            chosen.append(key)
        elif key.startswith(PREFIX):
            raise _unknown(key)
        elif key.startswith(CMAKE_DEFINE_PREFIX) and _LWS_NAME.fullmatch(key.removeprefix(CMAKE_DEFINE_PREFIX)):
            argv.append(_define(key, key.removeprefix(CMAKE_DEFINE_PREFIX), _one(key, item)))
            chosen.append(key)
        elif key in PASSED_THROUGH:
            skbuild[key] = item
        else:
            raise _refused(key)
    if spec is not None and chosen:
        raise BadConfigSetting(f"{SPEC_KEY} names a whole build already; it does not go with {', '.join(chosen)}",
                               hint=f"drop {SPEC_KEY}, or the other settings")
    if spec is not None:
        skbuild[SPEC_KEY] = spec
    return Split(PipBuild(tuple(argv), spec), skbuild)
