"""The grade rule: the one place that decides what a relevance grade is, for every source: a qrels file's
column (BEIR, MS MARCO, `prepare vectors`), a processed split's JSON, and qrels given as Python or NumPy
values (`isoadapt.Vectors`).

A grade is a number whose value is an integer, within trec_eval's C int: 2, 2.0 and numpy's 2 or 2.0 are
grade 2 (files written through pandas or NumPy hold floats, and reading them loses nothing); in a qrels
file, the column's text "2" or "2.0" spells that number. Refused: a fraction (1.5), a boolean, NaN or an
infinity, anything that is not a number (in JSON a string "1" is text, not a number), and |grade| > 2**31 - 1.
"""

from __future__ import annotations

import math
import numbers
import re

from isoadapt.errors import InputError

MAX_GRADE = 2**31 - 1  # trec_eval keeps relevance grades in a C int
NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")  # a decimal number, as a qrels column spells it


def grade(value, where: str, label: str = "grade") -> int:
    """The grade `value` stands for; else one line: `{where}: {label} {value!r} is not an integer` (or is
    out of range)."""
    return _checked(value, f"{where}: {label} {value!r}")


def spells_a_number(text: str) -> bool:
    """Whether a qrels column's text spells a number (a first line whose score does not is a header)."""
    return NUMBER.fullmatch(text.strip()) is not None


def text_grade(text: str, where: str, label: str = "grade") -> int:
    """A qrels column's grade: the number its text spells, then the grade rule (the message quotes the text)."""
    said, stripped = f"{where}: {label} {text!r}", text.strip()
    if not spells_a_number(stripped):
        raise InputError(f"{said} is not an integer")
    return _checked(int(stripped) if stripped.lstrip("+-").isdigit() else float(stripped), said)


def _checked(value, said: str) -> int:
    integral = isinstance(value, numbers.Integral) or (
        isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer()
    )
    if isinstance(value, bool) or not integral:
        raise InputError(f"{said} is not an integer")
    if abs(int(value)) > MAX_GRADE:
        raise InputError(f"{said} is out of range (at most {MAX_GRADE} in absolute value)")
    return int(value)
