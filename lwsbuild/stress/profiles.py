"""Stress profiles (profiles.toml): named harness schedules that `stress --profile` and `prove` run."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cache
from importlib import resources
from typing import Any

from lwsbuild.errors import UsageError
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


@cache
def _data() -> dict[str, Any]:
    return tomllib.loads(resources.files("lwsbuild.resources").joinpath("profiles.toml").read_text())


def names() -> list[str]:
    return list(_data()["profile"])


def get(name: str) -> NamedProfile:
    entry = _data()["profile"].get(name)
    if entry is None:
        raise UsageError(f"unknown stress profile {name!r}", hint=f"use one of: {', '.join(names())}")
    known = {f.name for f in fields(Profile)}
    unknown = sorted(set(entry["flags"]) - known)
    if unknown:  # a typo in the data file must not silently run the default schedule
        raise UsageError(f"profiles.toml: profile {name!r} sets unknown harness flags {unknown}",
                         hint=f"use stress.Profile fields: {', '.join(sorted(known))}")
    return NamedProfile(name, entry["description"], " ".join(entry["explores"].split()),
                        Profile.from_mapping(entry["flags"]))


def with_overrides(name: str, overrides: Mapping[str, object]) -> NamedProfile:
    """Profile `name` with the user's explicit harness flags (non-None values) on top."""
    named = get(name)
    merged = {**named.profile.to_json(), **{k: v for k, v in overrides.items() if v is not None}}
    return NamedProfile(named.name, named.description, named.explores, Profile.from_mapping(merged))
