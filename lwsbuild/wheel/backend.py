"""The project's PEP 517 build backend: scikit-build-core, with the build chosen by `-C lwsbuild.*`.

pyproject.toml names this module (`build-backend = "lwsbuild.wheel.backend"`, `backend-path = ["."]`), so
`pip wheel .`, `pip install .`, `python -m build` and cibuildwheel all come through here.

Why a wrapper, and not only scikit-build-core's own config-settings: a wheel's name (its version,
`0.1.0+lws4.3.5.seed.asan.d1a2b3c4`) is chosen by the metadata provider (lwsbuild/wheel/meta.py)
before CMake runs, and scikit-build-core hands a provider neither the config-settings nor the CMake
defines; arbitrary `lwsbuild.define.LWS_*` keys cannot be declared either. So before the
metadata and wheel hooks, this backend plans the build the way `lwsbuild build` does (fetch,
verify, patch: `python -m lwsbuild.request --write-spec`, the CMake project's own entry point) and
hands scikit-build-core the spec it wrote, exactly as `lwsbuild wheel` does (lwsbuild/wheel/package.py):
config-setting `lwsbuild.spec`, which the provider reads for the name and CMake includes for every
input, the compiler the plan recorded, and the release's SOURCE_DATE_EPOCH.

lwsbuild/wheel/configsettings.py says which settings exist; a wrong one ends the hook with lwsbuild's
one-line error and its exit code, before anything is fetched. So does an environment variable that
would configure scikit-build-core or CMake directly (SKBUILD_*, CMAKE_ARGS, CMAKE_TOOLCHAIN_FILE:
environment.backend_refused). scikit-build-core then runs in the environment a build step gets
(environment.construct), not in pip's: what lwsbuild does not record does not reach CMake.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from scikit_build_core import build as _skbuild

from lwsbuild.build import environment
from lwsbuild.errors import BadConfigSetting, LwsbuildError
from lwsbuild.wheel.configsettings import SPEC_ENV, SPEC_KEY, Split, split

ConfigSettings = dict[str, str | list[str]] | None

# The PEP 517 hooks (with the optional editable ones); nothing else here is for frontends.
__all__ = ["build_editable", "build_sdist", "build_wheel", "get_requires_for_build_editable",
           "get_requires_for_build_sdist", "get_requires_for_build_wheel", "prepare_metadata_for_build_editable",
           "prepare_metadata_for_build_wheel"]


def _split(config_settings: ConfigSettings) -> Split:
    try:
        refused = environment.backend_refused(os.environ)
        if refused:
            raise BadConfigSetting(f"the environment sets {', '.join(refused)}, which would configure scikit-build-core "
                                   "or CMake behind lwsbuild (the build key and provenance.json would not record it)",
                                   hint=f"unset {' '.join(refused)}; choose the build with -C lwsbuild.* settings "
                                        "(docs/settings.md)")
        return split(config_settings, os.environ)
    except LwsbuildError as exc:
        # A clean exit (no traceback): the frontend shows our line and "exit code 2".
        raise SystemExit(exc.report()) from None


@contextmanager
def _build_environment(**values: str) -> Iterator[None]:
    """os.environ, while scikit-build-core runs, is a build step's (environment.construct) with
    `values`: scikit-build-core, its metadata provider and CMake read it there. pip's own is put back."""
    saved = dict(os.environ)
    constructed = environment.construct(saved, **values)
    os.environ.clear()
    os.environ.update(constructed)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _planned(config_settings: ConfigSettings) -> Iterator[dict[str, str | list[str]]]:
    """scikit-build-core's settings for the build the lwsbuild settings describe, planned and written
    as a spec that lives while the hook runs."""
    parts = _split(config_settings)
    if parts.build.spec is not None:  # a spec lwsbuild wrote is given: it names the whole build
        with _build_environment(**{SPEC_ENV: parts.build.spec}):  # where the metadata provider reads it
            yield parts.skbuild
        return
    from lwsbuild import request
    from lwsbuild.common import cache
    from lwsbuild.wheel.meta import spec_provenance

    with cache.scratch("backend") as scratch:
        spec = scratch / "lwsbuild-spec.cmake"
        code = request.main(["--write-spec", str(spec), *parts.build.argv])
        if code != 0:  # request.main printed the one-line error
            raise SystemExit(code)
        described = spec_provenance(spec)
        settings = {**parts.skbuild, SPEC_KEY: str(spec),
                    # As `lwsbuild wheel` does: the compiler provenance.json names is the one CMake uses.
                    "cmake.define.CMAKE_C_COMPILER": described.compiler.path}
        # SOURCE_DATE_EPOCH (the pinned release's date) also dates the wheel's members.
        with _build_environment(**{SPEC_ENV: str(spec), "SOURCE_DATE_EPOCH": str(described.source_date_epoch)}):
            yield settings


def get_requires_for_build_wheel(config_settings: ConfigSettings = None) -> list[str]:
    return _skbuild.get_requires_for_build_wheel(_split(config_settings).skbuild)


def get_requires_for_build_editable(config_settings: ConfigSettings = None) -> list[str]:
    return _skbuild.get_requires_for_build_editable(_split(config_settings).skbuild)


def get_requires_for_build_sdist(config_settings: ConfigSettings = None) -> list[str]:
    return _skbuild.get_requires_for_build_sdist(_split(config_settings).skbuild)


def build_sdist(sdist_directory: str, config_settings: ConfigSettings = None) -> str:
    # The sources do not depend on the build chosen; the settings are still checked, so
    # `python -m build -C lwsbuild.verison=...` fails at once rather than after the sdist.
    return _skbuild.build_sdist(sdist_directory, _split(config_settings).skbuild)


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: ConfigSettings = None) -> str:
    with _planned(config_settings) as settings:
        return _skbuild.prepare_metadata_for_build_wheel(metadata_directory, settings)


def prepare_metadata_for_build_editable(metadata_directory: str, config_settings: ConfigSettings = None) -> str:
    with _planned(config_settings) as settings:
        return _skbuild.prepare_metadata_for_build_editable(metadata_directory, settings)


def build_wheel(wheel_directory: str, config_settings: ConfigSettings = None,
                metadata_directory: str | None = None) -> str:
    with _planned(config_settings) as settings:
        return _skbuild.build_wheel(wheel_directory, settings, metadata_directory)


def build_editable(wheel_directory: str, config_settings: ConfigSettings = None,
                   metadata_directory: str | None = None) -> str:
    with _planned(config_settings) as settings:
        return _skbuild.build_editable(wheel_directory, settings, metadata_directory)
