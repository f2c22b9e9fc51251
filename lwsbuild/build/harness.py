"""The stress harness's flags (bin/lws-stress), declared once: this table, for C and for Python.

The build writes `c_header()` beside its spec (lws_stress_flags.h: every flag's default and bounds,
and the usage text), which build/harness/stress_harness.c includes; stress/run.py's Profile, the
`stress`/`prove` options (`add_arguments`) and profiles.toml's shape are made from `FLAGS`. Adding
a flag is a row here and its use in the C harness.

A table in code, not a data file, for the same reason as common/settings.py: `lwsbuild --help`
builds the stress options from it and must neither read a data file nor import dataclasses.
"""

from __future__ import annotations

import argparse
import math
from typing import NamedTuple

HEADER = "lws_stress_flags.h"

Value = int | float | str


class Flag(NamedTuple):
    name: str  # the Python name, "hold_ms"; the harness's flag is --hold-ms
    kind: str  # int | float | text | choice
    default: Value | None  # the harness's own value when not given; None: computed (default_text says how)
    low: float | None  # bounds the harness accepts (int and float)
    high: float | None
    choices: tuple[str, ...]
    metavar: str
    help: str
    default_text: str = ""
    option: bool = True  # an option of `stress`/`prove` and a key of profiles.toml (else lwsbuild sets it)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def python_type(self) -> type:
        return {"int": int, "float": float}.get(self.kind, str)

    @property
    def shown_default(self) -> str:
        return self.default_text or ("none" if self.default in ("", None) else _shown(self.default))

    def parse(self, text: str) -> Value:
        """A command-line value: a number in the harness's bounds, or one of the choices."""
        if self.kind == "choice":
            if text not in self.choices:
                raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(self.choices)}")
            return text
        if self.kind == "text":
            return text
        try:
            value: int | float = int(text) if self.kind == "int" else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if self.kind == 'int' else 'a number'}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise argparse.ArgumentTypeError(f"{text} is not from {_shown(self.low)} to {_shown(self.high)}")
        return value


FLAGS: tuple[Flag, ...] = (
    Flag("threads", "int", 4, 1, 8, (), "N",
         "service threads (at least 2); thread 0 only services unless --tsi0-initiates 1"),
    Flag("cps", "int", 250, 1, 1_000_000, (), "N", "connections per second per initiating thread"),
    Flag("duration", "float", 10.0, 0.1, 86400.0, (), "S", "seconds of initiating connections"),
    Flag("total", "int", 0, 0, 1_000_000_000_000, (), "N", "stop after N connections (0: no limit)"),
    Flag("mix", "text", "refused=1,blackhole=1,echo=2", None, None, (), "refused=W,blackhole=W,echo=W",
         "target weights: a refused port, a black-holed port, a WebSocket echo server"),
    Flag("hold_ms", "int", 0, 0, 3_600_000, (), "MS", "keep each echoed connection open MS ms"),
    Flag("echo", "text", "internal", None, None, (), "internal|ws://127.0.0.1:PORT/PATH",
         "echo peer: a vhost of the harness's own context, or a loopback server"),
    Flag("timeout_secs", "int", 1, 1, 3600, (), "N", "lws connect, idle and header-table timeouts"),
    Flag("max_concurrent", "int", 4000, 1, 10_000_000, (), "N",
         "cap on open connections (lwsbuild raises it with a profile's load)"),
    Flag("nofile", "int", 8192, 64, 100_000_000, (), "N", "RLIMIT_NOFILE to ask for"),
    Flag("admit_batch", "int", 32, 1, 100_000, (), "N",
         "at most N new connections per service round and initiating thread, whatever --cps asks: "
         "over-asked, a thread falls behind its schedule (counted) instead of bursting"),
    Flag("watchdog", "float", None, 1.0, 86400.0, (), "S",
         "stall limit in seconds: no progress for this long is a finding", default_text="duration + 30"),
    Flag("sample_ms", "int", 1000, 10, 3_600_000, (), "MS", "progress sample interval"),
    Flag("seed", "int", 1, 0, 4_294_967_295, (), "N", "target-mix random seed"),
    Flag("log_level", "int", 3, 0, 16_777_215, (), "N", "lws log level bits (3: errors and warnings)"),
    Flag("tsi0_initiates", "int", 0, 0, 1, (), "0|1", "1: thread 0 initiates connections too"),
    Flag("initiate_in", "choice", "loop", None, None, ("loop", "timer"), "loop|timer",
         "connect between service calls, or inside an lws timer callback (pt lock held)"),
    Flag("close_by", "choice", "client", None, None, ("client", "server"), "client|server",
         "who closes an echoed connection"),
    Flag("cancel_ms", "int", 0, 0, 60_000, (), "MS", "another thread calls lws_cancel_service() every MS ms (0: never)"),
    Flag("destroy_open", "int", 0, 0, 1, (), "0|1", "1: destroy the context with connections still open"),
    Flag("server_threads", "int", 0, 0, 8, (), "N",
         "0: the echo server is a vhost of the harness's own context; N: a server context of its own with N "
         "service threads (WebSocket echo, HTTP/1.1 and h2 GETs)"),
    Flag("rogue_cps", "int", 0, 0, 100_000, (), "N",
         "raw-socket clients per second against the server, outside lws: HTTP/1.1 keep-alive and h2 GETs, h2c upgrades, "
         "slow readers, closes mid-handshake, abortive (RST) closes (0: none)"),
    Flag("tick_ms", "int", 10, 1, 1000, (), "MS", "the initiating threads' pacing tick", option=False),
    Flag("stall_wait", "float", 0.0, 0.0, 600.0, (), "S",
         "after the watchdog fires, stay stopped this long (lwsbuild dumps every thread's stack meanwhile)",
         option=False),
    Flag("echo_protocol", "text", "", None, None, (), "NAME",
         "the WebSocket subprotocol asked of the echo peer (default: the harness's own)", option=False),
)
BY_NAME = {flag.name: flag for flag in FLAGS}


def _shown(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def options() -> list[Flag]:
    """The flags a user (`stress`, `prove`) or a profile sets."""
    return [flag for flag in FLAGS if flag.option]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("stress harness (bin/lws-stress; unset = the profile's value, else the "
                                      "harness's default)")
    for flag in options():
        group.add_argument(flag.flag, dest=flag.name, type=flag.parse, metavar=flag.metavar,
                           help=f"{flag.help} (default {flag.shown_default})")


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _c_number(flag: Flag, value: float) -> str:
    if flag.kind == "float":
        return repr(float(value))
    return f"{int(value)}L" if abs(value) > 2**31 - 1 else str(int(value))


def c_header() -> str:
    """lws_stress_flags.h: LWSS_<NAME>_DEFAULT, _MIN and _MAX for each flag, and LWSS_USAGE."""
    lines = ["/* Generated by lwsbuild from its flag table (lwsbuild/build/harness.py): do not edit. */",
             "#ifndef LWS_STRESS_FLAGS_H", "#define LWS_STRESS_FLAGS_H", ""]
    usage = ["usage: lws-stress [options]"]
    for flag in FLAGS:
        macro = f"LWSS_{flag.name.upper()}"
        if isinstance(flag.default, str):
            lines.append(f"#define {macro}_DEFAULT {_c_string(flag.default)}")
        elif flag.default is not None:
            lines.append(f"#define {macro}_DEFAULT {_c_number(flag, flag.default)}")
        if flag.low is not None:
            lines.append(f"#define {macro}_MIN {_c_number(flag, flag.low)}")
        if flag.high is not None:
            lines.append(f"#define {macro}_MAX {_c_number(flag, flag.high)}")
        usage.append(f"  {flag.flag} {flag.metavar}  {flag.help} (default {flag.shown_default})")
    usage += ["  --quiet  no progress lines", "  --help  this text"]
    lines += ["", "#define LWSS_USAGE \\"]
    lines += [f"\t{_c_string(line + chr(10))} \\" for line in usage]
    lines += ['\t""', "", "#endif", ""]
    return "\n".join(lines)
