"""Model references and the names they hold (pure); run ids are in ``scorer.layout``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from scorer.errors import BadArgument

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
VERSION_RE = re.compile(r"[0-9]{1,9}")
DEFAULT_ALIAS = "production"


def check_name(name: str, what: str = "model name") -> str:
    if not NAME_RE.fullmatch(name) or ".." in name:
        raise BadArgument(
            f"{what} '{name}' is not allowed; use letters, digits, '.', '_' or '-' (max 64)"
        )
    return name


@dataclass(frozen=True, slots=True)
class ModelRef:
    """``NAME``, ``NAME@VERSION`` or ``NAME:ALIAS`` (``NAME`` means ``NAME:production``)."""

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str, default_alias: str = DEFAULT_ALIAS) -> ModelRef:
        text = text.strip()
        if "@" in text:
            name, _, ver = text.partition("@")
            # str.isdigit() accepts '²' and '١'; only ASCII digits are a version
            if not VERSION_RE.fullmatch(ver) or int(ver) < 1:
                raise BadArgument(f"'{text}': the version after '@' must be a number ≥ 1")
            return cls(check_name(name), version=int(ver))
        if ":" in text:
            name, _, alias = text.partition(":")
            return cls(check_name(name), alias=check_name(alias, "alias"))
        return cls(check_name(text), alias=default_alias)

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}@{self.version}"
        return f"{self.name}:{self.alias}"
