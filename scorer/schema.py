"""Match a file's header against the model card (pure): which column feeds which feature.

Refusals here are whole-file problems with a reason code and a message that says what to fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scorer.card import Feature, ModelCard
from scorer.codes import Code
from scorer.errors import FileRefused

OUTPUT_COLUMNS = ("row_number", "prediction", "prediction_score")
PROBA_PREFIX = "proba_"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
_OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


@dataclass(frozen=True, slots=True)
class HeaderPlan:
    """Where each feature sits in the file's rows, and what else the file carries."""

    header: tuple[str, ...]
    feature_index: tuple[int, ...]  # position in the row of card.features[i]
    features: tuple[Feature, ...]
    extra: tuple[str, ...]  # passed through untouched
    ignored: tuple[str, ...] = ()  # columns the card says training left out: passed through too
    delimiter: str = ","  # the file's dialect (see scorer/dialect.py)
    decimal: str = "."

    @property
    def width(self) -> int:
        return len(self.header)

    @property
    def dialect(self) -> dict[str, str]:
        return {"delimiter": self.delimiter, "decimal": self.decimal}

    @property
    def dialect_warnings(self) -> dict[str, int]:
        """The manifest's warnings for a file read in another dialect than ',' and '.'."""
        out: dict[str, int] = {}
        if self.delimiter == ";":
            out[Code.SEMICOLON_DIALECT] = 1
        if self.decimal == ",":
            out[Code.DECIMAL_COMMA] = 1
        return out


def plan_header(header: list[str], card: ModelCard) -> HeaderPlan:
    if not header or all(not h.strip() for h in header):
        raise FileRefused("the first line is empty; the file needs a header row", code=Code.EMPTY)
    if len(header) == 1 and len(card.features) > 1:
        for sep, label in _OTHER_DELIMITERS.items():
            if header[0].count(sep) >= 1:
                also = (
                    f", and ';'-separated ones whose header names every column the model "
                    f"needs ({_names(card)})"
                    if sep == ";"
                    else ""
                )
                raise FileRefused(
                    f"the header is {label}-separated; dropscore reads comma-separated "
                    f"files{also}. Save the file as CSV with ',' between columns",
                    code=Code.WRONG_DELIMITER,
                )
        raise FileRefused(
            f"the file has a single column ('{_short(header[0])}'); it must be comma-separated "
            f"with a header row. The model needs: {_names(card)}",
            code=Code.NOT_CSV,
        )
    blanks = [i + 1 for i, h in enumerate(header) if not h.strip()]
    if blanks:
        raise FileRefused(
            f"header column(s) {blanks} have no name; give every column a name",
            code=Code.BLANK_HEADER,
        )
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise FileRefused(
            f"the header repeats {', '.join(map(repr, dupes))}; each column name must be unique",
            code=Code.DUPLICATE_HEADER,
        )
    reserved = {*OUTPUT_COLUMNS, *probability_columns(card)}
    clash = [h for h in header if h in reserved]
    if clash:
        raise FileRefused(
            f"the file already has column(s) {clash}, which dropscore writes itself; "
            "rename or drop them (is this an already scored file?)",
            code=Code.RESERVED_COLUMN,
        )
    position = {h: i for i, h in enumerate(header)}
    missing = [f for f in card.features if f.required and f.name not in position]
    if missing:
        hints = []
        folded = {_fold(h): h for h in header}
        for feat in missing:
            near = folded.get(_fold(feat.name))
            if near is not None:
                hints.append(f"'{near}' looks like '{feat.name}'")
        hint = f" ({'; '.join(hints)}: rename exactly)" if hints else ""
        raise FileRefused(
            f"column(s) {', '.join(repr(f.name) for f in missing)} missing{hint}; "
            f"the model needs: {_names(card)}",
            code=Code.MISSING_COLUMNS,
        )
    used = [f for f in card.features if f.name in position]
    feature_names = {f.name for f in used}
    # a column training left out (an id) is expected, not an "extra" worth a warning
    left_out = {i.column for i in card.ignored}
    rest = [h for h in header if h not in feature_names]
    return HeaderPlan(
        header=tuple(header),
        feature_index=tuple(position[f.name] for f in used),
        features=tuple(used),
        extra=tuple(h for h in rest if h not in left_out),
        ignored=tuple(h for h in rest if h in left_out),
    )


def probability_columns(card: ModelCard) -> tuple[str, ...]:
    """predictions.csv's probability column per class (card.classes order): the card's list,
    or for cards from before it, the names ``proba_column_names`` gives."""
    if card.task != "classification":
        return ()
    if card.proba_columns:
        return card.proba_columns
    taken = [*card.feature_names, *(i.column for i in card.ignored), card.target]
    return proba_column_names(card.classes, taken)


def proba_column_names(classes: tuple[str, ...], taken: list[str]) -> tuple[str, ...]:
    """``proba_<label>``, the label with every character but letters, digits, '_', '-' and '.'
    replaced by '_'; a name already used (by another class, a column the model reads or
    leaves out, the target or an output column) gets '_2', '_3' … appended."""
    used = {*OUTPUT_COLUMNS, *taken}
    names = []
    for label in classes:
        base = PROBA_PREFIX + _UNSAFE.sub("_", label)
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name)
        names.append(name)
    return tuple(names)


def _fold(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).casefold()


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _names(card: ModelCard) -> str:
    return ", ".join(card.feature_names)
