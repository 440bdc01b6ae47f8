"""Pieces several pages share: error boundary, model picker, status badges, charts."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import altair as alt
import pandas as pd
import streamlit as st

from scorer import storage
from scorer.card import ModelCard
from scorer.codes import Code
from scorer.errors import DropscoreError, StorageUnavailable
from scorer.manifest import AlertEntry, Manifest
from scorer.refs import ModelRef
from ui import data
from ui.formats import (  # noqa: F401  # re-exported: every page formats through widgets
    AMOUNT_FORMAT,
    COUNT_FORMAT,
    SECONDS_FORMAT,
    SHARE_FORMAT,
    fmt_number,
    fmt_share,
    number_format,
)
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
        except StorageUnavailable as exc:
            log.warning("storage unavailable: %s", exc.message)
            outage(exc)
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


_S3_URL = re.compile(r"s3://([^/'\s]+)")


def endpoint_host() -> str:
    """host[:port] of the S3 endpoint this process talks to (never a path or credentials)."""
    try:
        url = urlsplit(str(storage.s3_client().meta.endpoint_url))
    except Exception:  # a client that cannot even be built: say so without details
        return "the S3 endpoint"
    return f"{url.hostname}:{url.port}" if url.port else str(url.hostname)


def outage_message(message: str, host: str) -> str:
    """What a user reads when storage is out: which bucket, which endpoint host, what to do —
    not botocore's text (it carries internal URLs with keys and query strings)."""
    found = _S3_URL.search(message)
    bucket = f"the bucket '{found.group(1)}'" if found else "the bucket"
    lower = message.lower()
    if "access denied" in lower or "permission denied" in lower:
        what = f"Access to {bucket} at {host} was denied: check the app's role or credentials."
    elif "no aws credentials" in lower:
        what = f"No AWS credentials are configured, so {bucket} at {host} cannot be read."
    elif "does not exist" in lower and "bucket" in lower:
        what = f"{bucket.capitalize()} does not exist at {host}: check DROPSCORE_BUCKET."
    else:
        what = (
            f"Cannot reach {bucket} at {host} (S3 endpoint): the storage service is down or not "
            "reachable from this server."
        )
    return what + " Runs, models and uploads are all kept there; nothing was changed."


def outage(exc: StorageUnavailable) -> None:
    """The outage message with a Retry button (cached listings are dropped so it really asks)."""
    st.error(md(outage_message(exc.message, endpoint_host())), icon=":material/cloud_off:")
    if st.button("Retry", icon=":material/refresh:", type="primary", key="outage.retry"):
        st.cache_data.clear()
        st.rerun()


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>$~:=])")


def md(text: object) -> str:
    """Text from a file, a bucket key or a card, shown literally inside Streamlit markdown
    (no links, no LaTeX from '$', no ':red[…]' directives)."""
    return _MARKDOWN.sub(r"\\\1", str(text))


ALERT_KIND = {
    Code.DRIFT_PREDICTION: "drift",
    Code.DRIFT_FEATURE: "drift",
    Code.UNSEEN_SHARE: "unseen categories",
    Code.OUT_OF_RANGE_SHARE: "out of range",
    Code.REJECTED_SHARE: "rejected rows",
}


def _rank(alert: AlertEntry) -> tuple[bool, int]:
    kinds = list(ALERT_KIND)
    code = alert.code
    return (alert.level != "major", kinds.index(code) if code in kinds else len(kinds))


def worst_alert(alerts: Sequence[AlertEntry]) -> AlertEntry | None:
    """The alert a badge names: major before warning, drift before shares."""
    ranked = sorted(alerts, key=_rank)
    return ranked[0] if ranked else None


def status_label(status: str, alerts: Sequence[AlertEntry] = ()) -> str:
    """``ok``, or ``ok · major drift`` when the run raised alerts: a run scored far outside its
    training data is never a plain ok."""
    worst = worst_alert(alerts)
    if worst is None:
        return status
    kind = ALERT_KIND.get(worst.code, "alert")
    return f"{status} · {worst.level} {kind}"


def alert_summary(alerts: Sequence[AlertEntry]) -> str:
    """One short line per run for a table: what raised alerts, major first."""
    parts: dict[str, list[str]] = {}
    for a in sorted(alerts, key=_rank):
        head = f"{a.level} {ALERT_KIND.get(a.code, a.code)}"
        what = "predictions" if a.code == Code.DRIFT_PREDICTION else a.column
        items = parts.setdefault(head, [])
        if what and str(what) not in items:
            items.append(str(what))
    return "; ".join(f"{h}: {', '.join(i)}" if i else h for h, i in parts.items())


def status_markdown(status: str, alerts: Sequence[AlertEntry] = ()) -> str:
    """A coloured badge for a run status (and its worst alert), for use inside markdown."""
    worst = worst_alert(alerts)
    color = STATUS_COLOR.get(status, "gray")
    icon = STATUS_ICON.get(status, "")
    if worst is not None and status == "ok":  # scored, but not like the training data
        color = "red" if worst.level == "major" else "orange"
        icon = ":material/notifications:"
    return f":{color}-badge[{icon} {md(status_label(status, alerts))}]"


def without_server_paths(m: Manifest) -> Manifest:
    """A copy of a manifest fit to hand to a user: a file written on this server (a temporary
    folder) is named by its file name only; bucket URLs stay, they are where the files are."""

    def public(url: str) -> str:
        return url if "://" in url or "/" not in url else url.rsplit("/", 1)[-1]

    outputs = {name: replace(e, url=public(e.url)) for name, e in m.outputs.items()}
    return replace(m, input=replace(m.input, url=public(m.input.url)), outputs=outputs)


def alerts_markdown(alerts: Sequence[AlertEntry]) -> str:
    """A run's alerts (manifest ``alerts``) as badge lines, major first, for use in markdown."""
    order = sorted(alerts, key=lambda a: a.level != "major")
    return "  \n".join(
        f":{'red' if a.level == 'major' else 'orange'}-badge[:material/notifications: "
        f"{a.code}] {md(a.message.split(';', 1)[0])}"
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
    if default.name not in names:  # named, never silently swapped for another model
        st.error(
            md(
                f"The configured model '{default.name}' is not in {settings.registry}; "
                f"models there: {', '.join(names)}. Pick one to continue, or fix DROPSCORE_MODEL."
            ),
            icon=":material/error:",
        )
    name = left.selectbox(
        "Model",
        names,
        index=names.index(default.name) if default.name in names else None,
        key=f"{key}.model",
        placeholder="Choose a model",
    )
    if name is None:
        st.stop()
    aliases = data.aliases(settings.registry, name)
    versions = data.versions(settings.registry, name)
    options: list[ModelRef] = [ModelRef(name, alias=a) for a in sorted(aliases, key=_alias_order)]
    options += [ModelRef(name, version=v) for v in sorted(versions, reverse=True)]
    if not options:
        raise DropscoreError(f"model '{name}' has no published version yet")
    wanted = default if default.name == name else ModelRef(name, alias="production")
    index = options.index(wanted) if wanted in options else None
    if index is None:
        missing = wanted.alias or f"v{wanted.version}"
        st.error(
            md(f"model '{name}' has no version/alias '{missing}' in {settings.registry}"),
            icon=":material/error:",
        )

    def label(ref: ModelRef) -> str:
        if ref.alias is not None:
            return f"{ref.alias} (v{aliases[ref.alias]})"
        tags = [a for a, v in aliases.items() if v == ref.version]
        return f"v{ref.version}" + (f" · {', '.join(tags)}" if tags else "")

    ref = right.selectbox(
        "Version", options, index=index, format_func=label, key=f"{key}.ref.{name}",
        placeholder="Choose a version",
    )  # fmt: skip
    if ref is None:
        st.stop()
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
    return fmt_number(round(value, 3) if abs(value) < 1 else value)


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
