"""The smoke command's options, declared once for `lwsbuild smoke` and `python -m lwsbuild.native.smoke`.

A module of its own so that building the `lwsbuild` parser (`lwsbuild --help`) does not import the
smoke client (lwsbuild/native/smoke.py: dataclasses, the echo peer); the command itself is smoke.command().
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_SUBPROTOCOL = "lwsbuild-smoke"


def add_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument("--url", help="ws:// or wss:// echo endpoint (default: an independent echo peer on 127.0.0.1)")
    parser.add_argument("--prefix", type=Path, metavar="DIR",
                        help="an install prefix to load (default: the library bundled in this wheel; with "
                             "`lwsbuild smoke`, build options such as --variant select a build)")
    parser.add_argument("--timeout", type=float, default=10.0, help="overall time limit in seconds (default 10)")
    parser.add_argument("--subprotocol", default=DEFAULT_SUBPROTOCOL,
                        help=f"WebSocket subprotocol to offer ('' for none; default {DEFAULT_SUBPROTOCOL})")
