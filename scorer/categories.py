"""One canonical form for category values, the same in training, scoring and the UI (pure).

Surrounding whitespace never matters: training gives all spellings of a value that differ only
in surrounding whitespace one spelling — the most frequent one in the training data, so a table
written with ', ' separators (' Male' everywhere) keeps its own values and the published
pipeline still agrees with plain PyCaret on that table — and the scorer trims a cell before
looking it up among the seen categories. A value that differs from exactly one seen category
only by case or by runs of inner whitespace is mapped to that category (and counted, so the
user sees it); a value that matches several seen categories that way, or none, stays unseen.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

# every character Python's str.strip() removes (pyarrow's utf8_trim needs them spelled out)
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
RULE = (
    "surrounding whitespace ignored (training: one spelling per trimmed value, its most frequent); "
    "case/inner-space variants mapped to a unique seen category"
)
_INNER = re.compile(f"[{re.escape(WHITESPACE)}]+")

UNSEEN = -1


def trim(value: str) -> str:
    return value.strip()


def one_spelling(counts: Mapping[str, int]) -> dict[str, str]:
    """Training's rule: every spelling → the spelling its trimmed value is written with most
    often (ties: the trimmed spelling, else the first in sorted order); whitespace-only
    spellings are left out (missing)."""
    best: dict[str, tuple[int, str]] = {}
    for spelling, n in sorted(counts.items()):
        key = trim(spelling)
        if not key:
            continue
        if key not in best or n > best[key][0] or (n == best[key][0] and spelling == key):
            best[key] = (n, spelling)
    return {s: best[trim(s)][1] for s in counts if trim(s)}


def fold(value: str) -> str:
    """The key two spellings of one category share: trimmed, case-folded, inner space as one."""
    return _INNER.sub(" ", value.strip()).casefold()


@dataclass(frozen=True, slots=True)
class Match:
    position: int  # in the seen categories; UNSEEN (-1) when none or several match
    normalised: bool  # found only by case / inner whitespace (worth a warning)


@dataclass(frozen=True, slots=True)
class CategoryIndex:
    """Seen categories with the lookups the rule needs; build once per card feature."""

    categories: tuple[str, ...]
    exact: dict[str, int]
    trimmed: dict[str, int]  # keys of several categories map to UNSEEN (ambiguous)
    folded: dict[str, int]

    def match(self, value: str) -> Match:
        pos = self.exact.get(value)
        if pos is not None:
            return Match(pos, False)
        key = trim(value)
        pos = self.exact.get(key, self.trimmed.get(key))
        if pos is not None:  # cards from before trimming may hold ' Private'
            return Match(pos, False)
        pos = self.folded.get(fold(key), UNSEEN)
        return Match(pos, pos != UNSEEN)

    def canonical(self, value: str) -> str | None:
        """The seen category ``value`` stands for, or None when it is unseen."""
        pos = self.match(value).position
        return None if pos == UNSEEN else self.categories[pos]


@lru_cache(maxsize=256)
def index(categories: tuple[str, ...]) -> CategoryIndex:
    return CategoryIndex(
        categories,
        {c: i for i, c in enumerate(categories)},
        _by_key(categories, trim),
        _by_key(categories, fold),
    )


def _by_key(categories: tuple[str, ...], key: Callable[[str], str]) -> dict[str, int]:
    """Each key to its category's position; a key several categories share to UNSEEN."""
    out: dict[str, int] = {}
    for i, c in enumerate(categories):
        k = key(c)
        out[k] = UNSEEN if k in out else i
    return out
