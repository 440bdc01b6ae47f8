"""Pieces several pages share: error boundary, model picker, status badges, charts."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import altair as alt
import pandas as pd
import streamlit as st

from scorer.card import ModelCard
from scorer.errors import DropscoreError
from scorer.refs import ModelRef
from ui import data
from ui.settings import UISettings

log = logging.getLogger("dropscore.ui")

STATUS_COLOR = {"ok": "green", "partial": "orange", "failed": "red"}
STATUS_ICON = {"ok": ":material/check_circle:", "partial": ":material/warning:",
               "failed": ":material/error:"}  # fmt: skip
BASELINE = "training baseline"
OBSERVED = "this run"
PALETTE = {BASELINE: "#a9b4c9", OBSERVED: "#2454d6"}
LEVEL_COLOR = {"stable": "#3d9a5b", "moderate": "#e0a100", "major": "#d6453d", "no data": "#a9b4c9"}


def guarded(render: Callable[[], None]) -> Callable[[], None]:
    """Run a page; a dropscore error shows its message, anything else a short apology.
    Never a traceback: the details go to the server log."""

    def run() -> None:
        try:
            render()
        except DropscoreError as exc:
            st.error(md(exc.message), icon=":material/error:")
        except Exception:
            log.exception("page failed")
            st.error(
                "Something went wrong on the server; the details are in its log. "
                "Try again, or tell the team that runs dropscore.",
                icon=":material/error:",
            )

    run.__name__ = render.__name__
    return run


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>$~:=])")


def md(text: object) -> str:
    """Text from a file, a bucket key or a card, shown literally inside Streamlit markdown
    (no links, no LaTeX from '$', no ':red[…]' directives)."""
    return _MARKDOWN.sub(r"\\\1", str(text))


def status_markdown(status: str) -> str:
    """A coloured badge for a run status, for use inside markdown."""
    color = STATUS_COLOR.get(status, "gray")
    icon = STATUS_ICON.get(status, "")
    return f":{color}-badge[{icon} {status}]"


def alerts_markdown(alerts: Sequence[dict[str, object]]) -> str:
    """A run's alerts (manifest ``alerts``) as badge lines, major first, for use in markdown."""
    order = sorted(alerts, key=lambda a: a.get("level") != "major")
    return "  \n".join(
        f":{'red' if a.get('level') == 'major' else 'orange'}-badge[:material/notifications: "
        f"{a.get('code')}] {md(str(a.get('message', '')).split(';', 1)[0])}"
        for a in order
    )


@dataclass(frozen=True, slots=True)
class Choice:
    ref: ModelRef  # what the user picked (alias or version)
    card: ModelCard  # the version it points at now


def model_picker(settings: UISettings, key: str) -> Choice:
    """Model name + version-or-alias; defaults to the configured model's production alias."""
    names = data.model_names(settings.registry)
    default = settings.default_model
    if not names:
        raise DropscoreError(
            f"no models in {settings.registry} yet; train one with 'python -m training train'"
        )
    left, right = st.columns([3, 2])
    name = left.selectbox(
        "Model",
        names,
        index=names.index(default.name) if default.name in names else 0,
        key=f"{key}.model",
    )
    aliases = data.aliases(settings.registry, name)
    versions = data.versions(settings.registry, name)
    options: list[ModelRef] = [ModelRef(name, alias=a) for a in sorted(aliases, key=_alias_order)]
    options += [ModelRef(name, version=v) for v in sorted(versions, reverse=True)]
    if not options:
        raise DropscoreError(f"model '{name}' has no published version yet")
    wanted = default if default.name == name else ModelRef(name, alias="production")
    index = options.index(wanted) if wanted in options else 0

    def label(ref: ModelRef) -> str:
        if ref.alias is not None:
            return f"{ref.alias} (v{aliases[ref.alias]})"
        tags = [a for a, v in aliases.items() if v == ref.version]
        return f"v{ref.version}" + (f" · {', '.join(tags)}" if tags else "")

    ref = right.selectbox(
        "Version", options, index=index, format_func=label, key=f"{key}.ref.{name}"
    )
    return Choice(ref, data.resolve(settings.registry, ref))


def _alias_order(alias: str) -> tuple[int, str]:
    return (0 if alias == "production" else 1, alias)


def describe_card(card: ModelCard) -> str:
    metrics = " · ".join(f"{k} {_num(v)}" for k, v in list(card.metrics.items())[:3])
    created = card.created_at[:16].replace("T", " ")
    return (
        f"**{md(card.ref)}** · {card.task} of *{md(card.target)}* · {md(card.estimator)} · "
        f"trained {created} UTC" + (f" · {md(metrics)}" if metrics else "")
    )


def _num(value: float) -> str:
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def compare_chart(
    buckets: Sequence[str], baseline: Sequence[float], observed: Sequence[float], title: str
) -> alt.Chart:
    """Grouped bars: share of values per bucket in training vs in this run."""
    rows = [
        {"bucket": b, "share": float(s), "series": series, "order": i}
        for series, shares in ((BASELINE, baseline), (OBSERVED, observed))
        for i, (b, s) in enumerate(zip(buckets, shares, strict=False))
    ]
    frame = pd.DataFrame(rows)
    return (
        alt.Chart(frame, title=title)
        .mark_bar(cornerRadiusTopLeft=3, cornerRadiusTopRight=3)
        .encode(
            x=alt.X("bucket:N", sort=list(buckets), title=None, axis=alt.Axis(labelAngle=-30)),
            xOffset=alt.XOffset("series:N", sort=[BASELINE, OBSERVED]),
            y=alt.Y("share:Q", title="share of rows", axis=alt.Axis(format="%")),
            color=alt.Color(
                "series:N",
                scale=alt.Scale(domain=list(PALETTE), range=list(PALETTE.values())),
                legend=alt.Legend(orient="top", title=None),
            ),
            tooltip=["bucket", "series", alt.Tooltip("share:Q", format=".1%")],
        )
    )
