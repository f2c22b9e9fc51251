"""Stress profiles (profiles.toml): named harness schedules that `stress --profile` and `prove` run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from lwsbuild.build import harness
from lwsbuild.errors import UsageError
from lwsbuild.resources import load as resources
from lwsbuild.resources.load import Each, Table
from lwsbuild.stress.run import Profile

DEFAULT = "default"


@dataclass(frozen=True)
class NamedProfile:
    name: str
    description: str
    explores: str
    profile: Profile

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "description": self.description, "explores": self.explores,
                "flags": self.profile.to_json()}


def shape() -> Table:
    """profiles.toml's shape: a profile may set every harness flag, typed as Profile types it."""
    flags = Table({}, {flag.name: flag.python_type for flag in harness.options()})
    return Table({"profile": Each(Table({"description": str, "explores": str, "flags": flags}))})


@cache
def _data() -> dict[str, Any]:
    return resources.read(resources.resource("profiles.toml"), shape())


def names() -> list[str]:
    return list(_data()["profile"])


def get(name: str) -> NamedProfile:
    entry = _data()["profile"].get(name)
    if entry is None:
        raise UsageError(f"unknown stress profile {name!r}", hint=f"use one of: {', '.join(names())}")
    return NamedProfile(name, entry["description"], " ".join(entry["explores"].split()),
                        Profile.from_mapping(entry["flags"]))


def with_overrides(name: str, overrides: Mapping[str, object]) -> NamedProfile:
    """Profile `name` with the user's explicit harness flags (non-None values) on top."""
    named = get(name)
    merged = {**named.profile.to_json(), **{k: v for k, v in overrides.items() if v is not None}}
    return NamedProfile(named.name, named.description, named.explores, Profile.from_mapping(merged))
