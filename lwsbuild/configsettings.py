"""PEP 517 config-settings (`pip wheel . -C lwsbuild.version=4.3.5`) → the options of `lwsbuild build`.

pip, `python -m build` and cibuildwheel hand a build backend a flat mapping of `-C KEY=VALUE`
strings (a key given twice becomes a list). The project's backend (lwsbuild/backend.py) splits it
here into what selects the libwebsockets build, and what scikit-build-core itself reads:

  lwsbuild.version=V             --lws-version V          env LWSBUILD_VERSION
  lwsbuild.series=S              --series S               env LWSBUILD_SERIES
  lwsbuild.variant=NAME          --variant NAME           env LWSBUILD_VARIANT
  lwsbuild.unfixed=true          --unfixed                env LWSBUILD_UNFIXED
  lwsbuild.allow-unpinned=true   --allow-unpinned         env LWSBUILD_ALLOW_UNPINNED
  lwsbuild.source=SPEC           --source SPEC            (repeatable: -C given once per mirror)
  lwsbuild.define.LWS_X=V        -D LWS_X=V               (one key per option)
  cmake.define.LWS_X=V           -D LWS_X=V               (scikit-build-core's own spelling)

The result is a command line for the CMake project's entry point (`python -m lwsbuild.request
--write-spec FILE ...`, request.BuildRequest's options), the one `lwsbuild build` and `lwsbuild wheel` plan through: so a pip
build and a CLI build of the same options are the same build. Values are checked there, by the
same code and with the same messages as on the command line; this module checks only the shape
(known keys, one value each, booleans), so a mistyped key fails before anything is fetched.

Standard library and lwsbuild.errors only: it runs inside pip's isolated build environment.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import BadConfigSetting

PREFIX = "lwsbuild."
DEFINE_PREFIX = "lwsbuild.define."
CMAKE_DEFINE_PREFIX = "cmake.define."
# Declared in pyproject.toml ([tool.scikit-build.config-setting]): `lwsbuild wheel` passes the spec it
# wrote; scikit-build-core hands it to CMake. It names a whole build, so no other lwsbuild.* key goes with it.
SPEC_KEY = "lwsbuild.spec"
SPEC_ENV = "LWSBUILD_SPEC"

# key -> (the `lwsbuild build` option, the environment variable read when the key is not given).
_TEXT = {"lwsbuild.version": ("--lws-version", "LWSBUILD_VERSION"),
         "lwsbuild.series": ("--series", "LWSBUILD_SERIES"),
         "lwsbuild.variant": ("--variant", "LWSBUILD_VARIANT")}
_FLAGS = {"lwsbuild.unfixed": ("--unfixed", "LWSBUILD_UNFIXED"),
          "lwsbuild.allow-unpinned": ("--allow-unpinned", "LWSBUILD_ALLOW_UNPINNED")}
_SOURCE = "lwsbuild.source"
KEYS = (*_TEXT, *_FLAGS, _SOURCE, f"{DEFINE_PREFIX}LWS_NAME", SPEC_KEY)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
# What lwsbuild's -D accepts (lwsbuild/variants.py): lws's own options, nothing else.
_LWS_NAME = re.compile(r"LWS_[A-Z0-9_]+")
_HINT = ("choose the build with -C lwsbuild.version=V, lwsbuild.series=S, lwsbuild.variant=NAME, "
         "lwsbuild.unfixed=true or lwsbuild.define.LWS_NAME=VALUE (README: Wheels)")

Settings = Mapping[str, str | list[str]]


@dataclass(frozen=True)
class PipBuild:
    """What a pip build's config-settings ask for, as `lwsbuild build` options."""

    argv: tuple[str, ...]  # e.g. ("--lws-version=4.3.5", "--variant=asan", "-DLWS_WITH_HTTP2=OFF")
    spec: str | None  # a spec written by lwsbuild (lwsbuild.spec / LWSBUILD_SPEC): build that, plan nothing


@dataclass(frozen=True)
class Split:
    build: PipBuild
    skbuild: dict[str, str | list[str]]  # the settings left for scikit-build-core


def _one(key: str, value: str | list[str]) -> str:
    if isinstance(value, list):
        if len(value) != 1:
            raise BadConfigSetting(f"config-setting {key} was given {len(value)} times ({', '.join(value)})",
                                   hint=f"give -C {key}=VALUE once")
        return value[0]
    return value


def _flag(key: str, value: str, where: str) -> bool:
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise BadConfigSetting(f"{where} {key}={value!r} is not a boolean",
                           hint=f"use {key}=true or {key}=false (also 1/0, yes/no, on/off)")


def _unknown(key: str) -> BadConfigSetting:
    known = [*_TEXT, *_FLAGS, _SOURCE, SPEC_KEY, DEFINE_PREFIX]
    close = difflib.get_close_matches(key, known, n=1)
    guess = f" (did you mean {close[0]}?)" if close else ""
    return BadConfigSetting(f"unknown config-setting {key}{guess}",
                            hint=f"lwsbuild's settings are {', '.join(KEYS)} (README: Wheels)")


def _define(key: str, name: str, value: str) -> str:
    if not _LWS_NAME.fullmatch(name):
        raise BadConfigSetting(f"config-setting {key}: {name!r} is not a libwebsockets option (LWS_*)",
                               hint="pass lws options as -C lwsbuild.define.LWS_NAME=VALUE")
    return f"-D{name}={value}"


def _cmake_define(key: str, name: str) -> BadConfigSetting | None:
    """Why -C cmake.define.NAME is refused, or None when it is an lws option lwsbuild takes over."""
    if _LWS_NAME.fullmatch(name):
        return None
    if name.startswith("LWSBUILD_"):
        return BadConfigSetting(f"config-setting {key}: {name} is lwsbuild's own CMake variable, written by "
                                "its backend from the lwsbuild.* settings",
                                hint="select the variant with -C lwsbuild.variant=NAME, and the rest with "
                                     "lwsbuild.version=V, lwsbuild.series=S, lwsbuild.unfixed=true or "
                                     "lwsbuild.define.LWS_NAME=VALUE")
    if name == "CMAKE_C_COMPILER":
        return BadConfigSetting(f"config-setting {key}: lwsbuild takes the compiler from CC and records it in "
                                "provenance.json", hint="set CC=/path/to/cc in the environment instead")
    return BadConfigSetting(f"config-setting {key}: {name} would reach CMake without being recorded in "
                            "provenance.json (lwsbuild/variants.toml decides every other CMake option)",
                            hint="pass lws options as -C lwsbuild.define.LWS_NAME=VALUE (or cmake.define.LWS_NAME)")


def split(settings: Settings | None, environ: Mapping[str, str]) -> Split:
    """Separate lwsbuild's settings from scikit-build-core's; raise BadConfigSetting on anything
    lwsbuild cannot honour."""
    settings = dict(settings or {})
    skbuild: dict[str, str | list[str]] = {}
    argv: list[str] = []
    chosen: list[str] = []  # the keys (or variables) that select a build: they exclude a spec
    for key, (option, env) in _TEXT.items():
        given = _one(key, settings.pop(key)) if key in settings else None
        from_env = environ.get(env)
        if given is not None and from_env is not None and given != from_env:
            raise BadConfigSetting(f"-C {key}={given} and {env}={from_env} disagree",
                                   hint=f"unset {env}, or give the same value")
        value = given if given is not None else from_env
        if value is None:
            continue
        if not value.strip():
            raise BadConfigSetting(f"config-setting {key} is empty", hint=f"give a value: -C {key}=VALUE")
        argv.append(f"{option}={value}")
        chosen.append(key if given is not None else env)
    for key, (option, env) in _FLAGS.items():
        given_flag = _flag(key, _one(key, settings.pop(key)), "config-setting") if key in settings else None
        env_flag = _flag(env, environ[env], "environment variable") if env in environ else None
        if given_flag is not None and env_flag is not None and given_flag != env_flag:
            raise BadConfigSetting(f"-C {key} and {env} disagree", hint=f"unset {env}, or give the same value")
        if given_flag or (given_flag is None and env_flag):
            argv.append(option)
            chosen.append(key if given_flag is not None else env)
    if _SOURCE in settings:
        sources = settings.pop(_SOURCE)
        argv += [f"--source={source}" for source in ([sources] if isinstance(sources, str) else sources)]
        chosen.append(_SOURCE)
    spec = _one(SPEC_KEY, settings.pop(SPEC_KEY)) if SPEC_KEY in settings else environ.get(SPEC_ENV)
    for key, item in settings.items():
        if key.startswith(DEFINE_PREFIX):
            argv.append(_define(key, key.removeprefix(DEFINE_PREFIX), _one(key, item)))
            chosen.append(key)
        elif key.startswith(PREFIX):
            raise _unknown(key)
        elif key.startswith(CMAKE_DEFINE_PREFIX):
            refused = _cmake_define(key, key.removeprefix(CMAKE_DEFINE_PREFIX))
            if refused is not None:
                raise refused
            argv.append(_define(key, key.removeprefix(CMAKE_DEFINE_PREFIX), _one(key, item)))
            chosen.append(key)
        elif key == "cmake.args" and any(arg.startswith(("-D", "-U", "-C")) for arg in _list(item)):
            raise BadConfigSetting("config-setting cmake.args sets CMake cache entries (-D/-U/-C), which "
                                   "provenance.json would not record", hint=_HINT)
        else:
            skbuild[key] = item
    if spec is not None and chosen:
        raise BadConfigSetting(f"{SPEC_KEY} (or {SPEC_ENV}) names a whole build already; it does not go with "
                               f"{', '.join(chosen)}", hint=f"drop {SPEC_KEY}, or the other settings")
    if spec is not None:
        skbuild[SPEC_KEY] = spec
    return Split(PipBuild(tuple(argv), spec), skbuild)


def _list(value: str | list[str]) -> list[str]:
    """scikit-build-core reads a string list setting as `;`-separated."""
    return [part for item in ([value] if isinstance(value, str) else value) for part in item.split(";")]
