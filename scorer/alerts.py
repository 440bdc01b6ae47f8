"""Alerts: what in a run's counts needs a person's attention (pure: counts + card in, alerts out).

Five kinds, each ``warning`` or ``major``: drift of the predictions (``DRIFT_PREDICTION``) or of a
feature (``DRIFT_FEATURE``) against the card's baseline, and the shares of rows with an unseen
category (``UNSEEN_SHARE``), a number outside the training range (``OUT_OF_RANGE_SHARE``) or a
rejection (``REJECTED_SHARE``).

Every threshold accounts for the run's size, so a small file does not raise alarms from sampling
noise alone:

* Drift. Under no shift, PSI behaves like a chi-square variable scaled by the sample sizes:
  ``PSI ≈ χ²(B−1)·(1/n + 1/N)`` for B bins, n run values and N baseline values, so its expected
  value is about ``(B−1)(1/n + 1/N)`` — 0.19 for a 50-row file on 10 bins, already near the
  conventional "moderate" cut of 0.1 (Yurdakul, *Statistical Properties of Population Stability
  Index*, PhD thesis, Western Michigan University, 2018, https://scholarworks.wmich.edu/
  dissertations/3208; the same sample-size argument leads Potgieter et al., *The Population
  Resemblance Statistic*, arXiv:2307.11878, to Pearson-chi-square critical values). A drift alert
  therefore needs the PSI above ``max(conventional cut, χ²_{1−α}(B−1)·(1/n + 1/N))`` *and*
  Pearson's two-sample chi-square on the bin counts above ``χ²_{1−α}(B−1)``; the second test
  guards against the PSI's floor for empty bins, which inflates it on small files. Major: cut
  0.25, α = 0.001; warning: cut 0.1, α = 0.01.
* Shares. The share must exceed the threshold with 95 % confidence: the lower end of the Wilson
  score interval (Wilson, JASA 22:209–212, 1927) is compared with it, so 3 of 50 rows (6 %) is
  not "over 5 %" but 300 of 5,000 is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Literal

from scorer import drift
from scorer.card import ModelCard
from scorer.codes import Code

AlertLevel = Literal["warning", "major"]

#: (level, conventional PSI cut, false-alarm probability of the chi-square test), strongest first
DRIFT_LEVELS: tuple[tuple[AlertLevel, float, float], ...] = (
    ("major", drift.MAJOR, 0.001),
    ("warning", drift.MODERATE, 0.01),
)
#: share thresholds (warning, major) for each share alert
UNSEEN_SHARES = (0.05, 0.25)
OUT_OF_RANGE_SHARES = (0.05, 0.25)
REJECTED_SHARES = (0.02, 0.20)
CONFIDENCE_Z = NormalDist().inv_cdf(0.95)  # one-sided 95 %


@dataclass(frozen=True, slots=True)
class Alert:
    code: str
    level: AlertLevel
    message: str
    value: float  # the PSI or the share that raised it
    threshold: float  # what it was compared with (already adjusted for the run's size)
    column: str | None = None  # the feature it is about; None for the whole run

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def chi2_quantile(p: float, df: int) -> float:
    """Quantile of the chi-square distribution (Wilson–Hilferty; within ~1 % for df ≥ 2, a
    little high — so a little conservative — for df = 1). Stdlib only: no scipy import."""
    if df < 1:
        return math.inf
    z = NormalDist().inv_cdf(p)
    k = float(df)
    return k * (1 - 2 / (9 * k) + z * math.sqrt(2 / (9 * k))) ** 3


def wilson_lower(count: int, n: int, z: float = CONFIDENCE_Z) -> float:
    """Lower end of the Wilson score interval for a share ``count / n``."""
    if n <= 0:
        return 0.0
    p = count / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - spread) / (1 + z * z / n))


def psi_threshold(cut: float, bins: int, n: int, n_baseline: int, alpha: float) -> float:
    """The PSI a shift must exceed: the conventional cut, or what sampling noise alone exceeds
    with probability ``alpha`` for these sizes, whichever is larger."""
    if bins < 2 or n <= 0:
        return math.inf
    scale = 1 / n + (1 / n_baseline if n_baseline > 0 else 0.0)
    return max(cut, chi2_quantile(1 - alpha, bins - 1) * scale)


def pearson(baseline: Sequence[float], observed: Sequence[float], n: int, n_baseline: int) -> float:
    """Two-sample Pearson chi-square of observed shares (n values) against baseline shares
    (N values): each bin's difference has variance ≈ e·(1/n + 1/N). A bin the baseline never
    had (an unseen category) counts as half a baseline value."""
    if n <= 0:
        return 0.0
    scale = 1 / n + (1 / n_baseline if n_baseline > 0 else 0.0)
    floor = 0.5 / n_baseline if n_baseline > 0 else drift.EPSILON
    return float(
        sum((a - e) ** 2 / max(e, floor) for e, a in zip(baseline, observed, strict=True)) / scale
    )


def _drift_alert(dist: drift.Distribution, n_baseline: int, column: str | None) -> Alert | None:
    bins = len(dist.buckets)
    if dist.count == 0 or bins < 2 or not any(dist.baseline) or len(dist.observed) != bins:
        return None
    stat = pearson(dist.baseline, dist.observed, dist.count, n_baseline)
    for level, cut, alpha in DRIFT_LEVELS:
        threshold = psi_threshold(cut, bins, dist.count, n_baseline, alpha)
        if dist.psi >= threshold and stat >= chi2_quantile(1 - alpha, bins - 1):
            what = "the predictions" if column is None else f"'{column}'"
            return Alert(
                code=Code.DRIFT_PREDICTION if column is None else Code.DRIFT_FEATURE,
                level=level,
                message=f"{level} drift of {what} (PSI {dist.psi:.3g}); over {threshold:.3g}, "
                f"the PSI sampling noise alone stays under for {dist.count:,} values — compare "
                "this file with the training data",
                value=round(dist.psi, 6),
                threshold=round(threshold, 6),
                column=column,
            )
    return None


def _share_alert(
    code: str,
    what: str,
    count: int,
    n: int,
    thresholds: tuple[float, float],
    column: str | None,
) -> Alert | None:
    if n <= 0 or count <= 0:
        return None
    lower = wilson_lower(count, n)
    warning, major = thresholds
    level: AlertLevel
    if lower > major:
        level, threshold = "major", major
    elif lower > warning:
        level, threshold = "warning", warning
    else:
        return None
    where = f" in '{column}'" if column is not None else ""
    return Alert(
        code=code,
        level=level,
        message=f"{level}: {count / n:.0%} of rows {what}{where} ({count:,} of {n:,}); over "
        f"{threshold:.0%} even allowing for the file's size",
        value=round(count / n, 6),
        threshold=threshold,
        column=column,
    )


def run_alerts(
    card: ModelCard,
    *,
    rows_in: int,
    rows_scored: int,
    rows_rejected: int,
    warnings_by_column: Mapping[str, Mapping[str, int]],
    distributions: Mapping[str, Any],
) -> list[Alert]:
    """Every alert a run's counts raise: the run's own shares first, then drift."""
    found: list[Alert | None] = [
        _share_alert(
            Code.REJECTED_SHARE, "were rejected", rows_rejected, rows_in, REJECTED_SHARES, None
        )
    ]
    for column, codes in warnings_by_column.items():
        unseen = int(codes.get(Code.UNSEEN_CATEGORY, 0))
        outside = int(codes.get(Code.OUT_OF_RANGE, 0))
        found += [
            _share_alert(
                Code.UNSEEN_SHARE, "have an unseen category", unseen, rows_scored, UNSEEN_SHARES,
                column,
            ),
            _share_alert(
                Code.OUT_OF_RANGE_SHARE, "are outside the training range", outside, rows_scored,
                OUT_OF_RANGE_SHARES, column,
            ),
        ]  # fmt: skip
    if rows_scored and distributions:
        pred, features = drift.run_drift(card, distributions)
        n_train = card.training_data.rows or 0
        n_holdout = card.training_data.holdout_rows or 0
        found.append(_drift_alert(pred, n_holdout, None))
        found.extend(_drift_alert(f, n_train, f.name) for f in features)
    return [a for a in found if a is not None]
