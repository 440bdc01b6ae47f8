"""A run's scored batches added up (pure; file runs and the Python API share it): their rows to
the outputs in file order, their counts into the numbers, alerts, status and reason a manifest
records."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from scorer import alerts
from scorer.batches import BatchResult, Totals
from scorer.card import ModelCard
from scorer.codes import Code
from scorer.drift import Distributions
from scorer.errors import FileRefused
from scorer.manifest import AlertEntry, Counts, Reason, decide_status
from scorer.schema import HeaderPlan


def collect(
    results: Iterable[BatchResult],
    predictions: Callable[[bytes], object],
    rejected: Callable[[bytes], object],
    totals: Totals,
    dist: Distributions,
    each: Callable[[], None] | None = None,
) -> None:
    """The one loop over scored batches (file runs and the Python API): their rows to the
    outputs in order, their counts into ``totals`` and ``dist``; ``each`` runs before each
    batch is written (a stop request, the budget, progress)."""
    for result in results:
        if each is not None:
            each()
        predictions(result.predictions)
        if result.rejected:
            rejected(result.rejected)
        totals.add(result)
        dist.merge(result.distributions)


def account(
    card: ModelCard,
    plan: HeaderPlan,
    rows_in: int,
    totals: Totals,
    dist: Distributions,
    max_rejected_rate: float | None = None,
    file_warnings: Mapping[str, int] | None = None,
) -> Counts:
    """A run's counts, warnings, distributions, alerts, status and reason from its totals
    (pure; shared by file runs and the Python API). No data rows: see ``refuse_empty``."""
    rejected = totals.rejected_by_code
    warnings = dict(sorted({**totals.warnings, **(file_warnings or {})}.items()))
    if plan.extra:
        warnings[Code.EXTRA_COLUMNS] = len(plan.extra)
    by_column = {c: dict(sorted(v.items())) for c, v in sorted(totals.column_warnings.items())}
    distributions = dist.as_dict()
    raised = alerts.run_alerts(
        card,
        rows_in=rows_in,
        rows_scored=totals.rows_scored,
        rows_rejected=totals.rows_rejected,
        warnings_by_column=by_column,
        distributions=distributions,
    )
    status, code = decide_status(rows_in, totals.rows_scored, totals.rows_rejected)
    reason = None
    if code == Code.HEADER_ONLY:
        reason = Reason(code, "the file has a header but no data rows; add rows to score")
    elif code == Code.ALL_ROWS_REJECTED:
        top = ", ".join(f"{k}×{v}" for k, v in rejected.most_common(3))
        reason = Reason(
            code,
            f"every row was rejected ({top}); see rejected.csv for each row's reason and fix "
            "the file",
        )
    elif too_many(totals.rows_rejected, rows_in, max_rejected_rate):
        status = "failed"
        reason = Reason(
            Code.TOO_MANY_REJECTED,
            f"{totals.rows_rejected:,} of {rows_in:,} rows rejected "
            f"({totals.rows_rejected / rows_in:.1%}), more than the --max-rejected-rate "
            f"{max_rejected_rate:.1%} allows; see rejected.csv for each row's reason, fix "
            "the file and score it again",
        )
    return Counts(
        status, reason, rows_in, totals.rows_scored, totals.rows_rejected,
        dict(sorted(rejected.items())), warnings, by_column, list(plan.extra), distributions,
        tuple(AlertEntry.from_dict(a.as_dict()) for a in raised),
    )  # fmt: skip


def refuse_empty(counts: Counts) -> None:
    """FileRefused (HEADER_ONLY) for a file with a header but no data rows: not a run's outcome
    but a refusal of the file."""
    if counts.reason is not None and counts.reason.code == Code.HEADER_ONLY:
        raise FileRefused(counts.reason.message, code=counts.reason.code)


def too_many(rejected: int, rows: int, max_rate: float | None) -> bool:
    """The --max-rejected-rate gate: off when None; strictly above the rate fails the run."""
    return max_rate is not None and rows > 0 and rejected / rows > max_rate
