"""lwsbuild: a reproducible, verifiably fixed libwebsockets.

The public surface is what runs from outside, each entry point declaring its own in `__all__`:
  lwsbuild                      the command (lwsbuild.cli.main:main; python -m lwsbuild)
  lwsbuild.wheel.backend        the PEP 517 build backend (pyproject.toml build-backend)
  lwsbuild.wheel.meta           the wheel's metadata provider, and `python -m` check/repair
  lwsbuild.request              `python -m lwsbuild.request --write-spec` (the CMake project)
  lwsbuild.build.sbom           `python -m lwsbuild.build.sbom` (an install step)
  lwsbuild.build.tls            `python -m lwsbuild.build.tls` (an install step)
  lwsbuild.native.smoke         `python -m lwsbuild.native.smoke`
  lwsbuild.errors               `python -m lwsbuild.errors` (the exit-code table)
  lwsbuild.common.settings      `python -m lwsbuild.common.settings` (the settings table)
  lwsbuild.cli.tables           `python -m lwsbuild.cli.tables` (the docs' generated tables)
  lwsbuild._native              the cmake.root entry point (libwebsockets_ROOT for consumers)
Everything else is lwsbuild's own and may change; tests/test_layout.py holds the list.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
