"""A fitted pipeline's imputers, column cleaning and category encoders as plan steps.

Each table is derived from the fitted object with the library's own rules, then checked against
the library's own transform (``PlanUnsupported`` when anything differs).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from scorer.errors import PlanUnsupported
from scorer.plan import Encode, ImputeCategories, ImputeNumbers, Rename, Step

UNSEEN = "\x00dropscore-plan-unseen\x00"  # probe value no training category can be


def imputer(imp: Any, include: list[str], kinds: dict[str, str], where: str) -> Step:
    missing_values = imp.missing_values
    if not (isinstance(missing_values, float) and math.isnan(missing_values)):
        raise PlanUnsupported(f"{where}: missing_values={missing_values!r}, not NaN")
    if imp.add_indicator or imp.strategy not in ("mean", "median", "most_frequent", "constant"):
        raise PlanUnsupported(f"{where}: strategy {imp.strategy!r}/add_indicator not supported")
    if list(getattr(imp, "feature_names_in_", [])) != include:
        raise PlanUnsupported(f"{where}: fitted on other columns than it is given")
    stats = list(imp.statistics_)
    col_kinds = {kinds[c] for c in include}
    if col_kinds == {"number"} and imp._fit_dtype.kind in "fiu":
        fills = [float(s) for s in stats]
        if not all(math.isfinite(f) for f in fills):
            raise PlanUnsupported(f"{where}: a column had no value to impute from")
        return ImputeNumbers(tuple(include), tuple(fills))
    if col_kinds == {"category"} and imp._fit_dtype.kind == "O":
        if not all(type(s) is str for s in stats):
            raise PlanUnsupported(f"{where}: an imputed category is not text ({stats!r})")
        return ImputeCategories(tuple(include), tuple(stats))
    raise PlanUnsupported(
        f"{where}: columns of kinds {sorted(col_kinds)}, fitted as {imp._fit_dtype}"
    )


def renames(step: Any, include: list[str], kinds: dict[str, str], where: str) -> Rename:
    if sorted(include) != sorted(kinds):
        raise PlanUnsupported(f"{where}: applies to some columns only")
    names = [(c, re.sub(step.match, "", str(c))) for c in kinds]
    if len({new for _, new in names}) != len(names):
        raise PlanUnsupported(f"{where}: cleaning makes two column names equal")
    return Rename(tuple((old, new) for old, new in names if old != new))


def encoder_kind(enc: Any) -> str | None:
    from category_encoders import OneHotEncoder, OrdinalEncoder, TargetEncoder

    for cls in (OrdinalEncoder, OneHotEncoder, TargetEncoder):
        if type(enc) is cls:
            return cls.__name__
    return None


def encoders(enc: Any, include: list[str], kinds: dict[str, str], where: str) -> list[Encode]:
    """One table per encoded column, derived from the fitted mapping with the library's rules,
    then checked against the encoder's own transform of every category, an unseen value and
    a missing one (with and without NaN in the frame, the two dtype paths it takes)."""
    import pandas as pd

    kind = encoder_kind(enc)
    if enc.drop_invariant or not enc.return_df or getattr(enc, "invariant_cols", []):
        raise PlanUnsupported(f"{where}: drop_invariant/return_df options not supported")
    cols = list(enc.cols)
    if getattr(enc, "_dim", None) != len(include) or not set(cols) <= set(include):
        raise PlanUnsupported(f"{where}: fitted on other columns than it is given")
    text = [c for c in cols if kinds[c] != "category"]
    if text:
        raise PlanUnsupported(f"{where}: encodes non-category columns {text}")
    if kind == "OrdinalEncoder":
        maps = _ordinal_maps(enc, cols, where)
        derived = {c: _table_of(maps[c], lambda code: [code]) for c in cols}
        outputs = {c: [c] for c in cols}
    elif kind == "OneHotEncoder":
        if enc.handle_unknown not in ("value", "return_nan", "indicator"):
            raise PlanUnsupported(f"{where}: handle_unknown={enc.handle_unknown!r}")
        if enc.handle_missing not in ("value", "return_nan", "indicator", "ignore"):
            raise PlanUnsupported(f"{where}: handle_missing={enc.handle_missing!r}")
        maps = _ordinal_maps(enc.ordinal_encoder, cols, where)
        dummies = {m["col"]: m["mapping"] for m in enc.mapping}
        if sorted(dummies) != sorted(cols):
            raise PlanUnsupported(f"{where}: a column has no one-hot mapping")
        outputs = {c: [str(o) for o in dummies[c].columns] for c in cols}
        derived = {c: _table_of(maps[c], _dummy_row(dummies[c])) for c in cols}
    else:  # TargetEncoder
        if enc.hierarchy is not None:
            raise PlanUnsupported(f"{where}: hierarchical target encoding is not supported")
        if enc.handle_unknown not in ("value", "return_nan"):
            raise PlanUnsupported(f"{where}: handle_unknown={enc.handle_unknown!r}")
        if enc.handle_missing not in ("value", "return_nan"):
            raise PlanUnsupported(f"{where}: handle_missing={enc.handle_missing!r}")
        maps = _ordinal_maps(enc.ordinal_encoder, cols, where)
        outputs = {c: [c] for c in cols}
        derived = {c: _table_of(maps[c], _series_lookup(enc.mapping[c])) for c in cols}
    tables = [
        Encode(
            column=c,
            outputs=tuple(outputs[c]),
            categories=tuple(maps[c].categories),
            table=tuple(tuple(r) for r in derived[c][:-2]),
            unseen=tuple(derived[c][-2]),
            missing=tuple(derived[c][-1]),
            encoder=f"category_encoders.{kind}",
        )
        for c in cols
    ]
    # The library's own answer for the same probes must be the derived table, bit for bit.
    for with_missing in (False, True):
        probe_cols: dict[str, list[Any]] = {}
        for c in include:
            if c in maps:
                probe = [*maps[c].categories, UNSEEN] + ([np.nan] if with_missing else [])
            else:
                probe = []
            probe_cols[c] = probe
        length = max(len(p) for p in probe_cols.values())
        frame = pd.DataFrame(
            {
                c: pd.Series(
                    (p + [p[0]] * (length - len(p))) if p else [0.0] * length, dtype=object
                )
                for c, p in probe_cols.items()
            }
        )
        got = enc.transform(frame)
        for t in tables:
            k = len(t.categories) + 1 + int(with_missing)
            want = np.array([*t.table, t.unseen] + ([t.missing] if with_missing else []))
            try:
                have = got[list(t.outputs)].to_numpy(dtype=np.float64)[:k]
            except (KeyError, TypeError, ValueError) as exc:
                raise PlanUnsupported(f"{where}: unexpected output ({exc})") from exc
            if have.shape != want.shape or not np.array_equal(have, want, equal_nan=True):
                raise PlanUnsupported(f"{where}: the library's output differs from the table")
    return tables


@dataclass
class _OrdinalMap:
    """A fitted category_encoders OrdinalEncoder's code for each value of one column."""

    categories: list[str]
    known: list[float]
    unseen: float
    missing: float


def _ordinal_maps(enc: Any, cols: list[str], where: str) -> dict[str, _OrdinalMap]:
    """OrdinalEncoder.ordinal_encoding with a mapping: ``map`` (NaN matches a NaN key), unknown
    → NaN → -1 (handle_unknown='value'), then -2 → NaN when handle_missing='return_nan'."""
    from category_encoders import OrdinalEncoder

    if type(enc) is not OrdinalEncoder:
        raise PlanUnsupported(f"{where}: inner encoder is a {type(enc).__name__}")
    if enc.handle_unknown != "value" or enc.handle_missing not in ("value", "return_nan"):
        raise PlanUnsupported(
            f"{where}: handle_unknown={enc.handle_unknown!r}, handle_missing={enc.handle_missing!r}"
        )
    if enc.drop_invariant or getattr(enc, "invariant_cols", []):
        raise PlanUnsupported(f"{where}: drop_invariant is not supported")
    out: dict[str, _OrdinalMap] = {}
    for switch in enc.mapping:
        col = switch.get("col")
        series = switch["mapping"]
        if not series.index.is_unique:
            raise PlanUnsupported(f"{where}: '{col}' maps a category twice")
        cats: list[str] = []
        codes: list[float] = []
        nan_code: float | None = None
        for key, code in series.items():
            value = float(code)
            if not (math.isfinite(value) and value == int(value)):
                raise PlanUnsupported(f"{where}: '{col}' has a non-integer code {code!r}")
            if isinstance(key, float) and math.isnan(key):
                nan_code = value
            elif type(key) is str:
                cats.append(key)
                codes.append(value)
            else:
                raise PlanUnsupported(f"{where}: '{col}' has a category that is not text: {key!r}")

        def post(code: float) -> float:
            return math.nan if enc.handle_missing == "return_nan" and code == -2 else code

        out[col] = _OrdinalMap(
            categories=cats,
            known=[post(c) for c in codes],
            unseen=post(-1.0),
            missing=post(nan_code if nan_code is not None else -1.0),
        )
    if sorted(out) != sorted(cols):
        raise PlanUnsupported(f"{where}: the mapping does not cover its columns")
    return out


def _table_of(m: _OrdinalMap, row: Any) -> list[list[float]]:
    """Rows for every category, then unseen, then missing."""
    return [[float(v) for v in row(code)] for code in [*m.known, m.unseen, m.missing]]


def _dummy_row(mod: Any) -> Any:
    """OneHotEncoder.get_dummies: ``mod.reindex(code.fillna(-2))`` — absent codes give NaN."""
    index = [float(i) for i in mod.index]
    if len(set(index)) != len(index):
        raise PlanUnsupported("one-hot mapping repeats a code")
    rows = {i: [float(v) for v in mod.iloc[k].tolist()] for k, i in enumerate(index)}
    width = mod.shape[1]

    def row(code: float) -> list[float]:
        code = -2.0 if math.isnan(code) else code
        return rows.get(code, [math.nan] * width)

    return row


def _series_lookup(series: Any) -> Any:
    """TargetEncoder.target_encode: ``X[col].map(mapping)`` — absent codes give NaN."""
    values = {float(i): float(v) for i, v in series.items()}
    if len(values) != len(series):
        raise PlanUnsupported("target encoding repeats a code")

    def row(code: float) -> list[float]:
        return [values.get(code, math.nan)]

    return row
