"""The app's configuration, read once per session from ``DROPSCORE_*`` variables (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from scorer.errors import BadArgument
from scorer.layout import INCOMING, MODELS, SCORED, Prefixes
from scorer.refs import ModelRef

Mode = Literal["local", "aws"]


@dataclass(frozen=True, slots=True)
class UISettings:
    bucket: str = "dropscore"
    registry: str = f"s3://dropscore/{MODELS}"
    model: str = "claims"  # NAME, NAME@VERSION or NAME:ALIAS: the batch path's model
    mode: Mode = "local"
    allowed: tuple[str, ...] = ()  # e-mail addresses or domains ("example.com")
    admins: tuple[str, ...] = ()  # may promote model versions (aws mode)
    max_mb: int = 50
    max_rows: int = 200_000
    incoming: str = INCOMING
    scored: str = SCORED
    # S3 for a person waiting: an outage is reported within ~5 s (the scorer keeps its own
    # longer timeouts and 7 attempts)
    s3_connect_timeout: float = 2.0
    s3_read_timeout: float = 20.0
    s3_attempts: int = 2

    @property
    def default_model(self) -> ModelRef:
        return ModelRef.parse(self.model)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> UISettings:
        bucket = env.get("DROPSCORE_BUCKET", "").strip() or "dropscore"
        mode = env.get("DROPSCORE_UI_MODE", "").strip().lower() or "local"
        if mode not in ("local", "aws"):
            raise BadArgument(f"DROPSCORE_UI_MODE is '{mode}'; use 'local' or 'aws'")
        model = env.get("DROPSCORE_MODEL", "").strip() or "claims"
        ModelRef.parse(model)  # refuse a malformed reference at start, not on first use
        prefixes = Prefixes.from_env(env)  # the scorer's own: runs are listed where it writes
        return cls(
            bucket=bucket,
            registry=env.get("DROPSCORE_REGISTRY", "").strip() or f"s3://{bucket}/{MODELS}",
            model=model,
            mode=mode,  # type: ignore[arg-type]  # checked above
            allowed=_entries(env.get("DROPSCORE_UI_ALLOWED", "")),
            admins=_entries(env.get("DROPSCORE_UI_ADMINS", "")),
            max_mb=_positive(env, "DROPSCORE_UI_MAX_MB", 50),
            max_rows=_positive(env, "DROPSCORE_UI_MAX_ROWS", 200_000),
            incoming=prefixes.incoming,
            scored=prefixes.scored,
        )


def _entries(text: str) -> tuple[str, ...]:
    return tuple(e.strip().lower() for e in text.replace(";", ",").split(",") if e.strip())


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise BadArgument(f"{name} is '{raw}'; it must be a whole number ≥ 1")
    return int(raw)
