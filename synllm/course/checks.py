"""Self-check cells for the course labs: tell a student, kindly and specifically, whether a result is plausible.

Each check returns Markdown to display (never raises): a green ✔ line when the answer passes, a red ✘ line
with a hint when it does not, and a grey … line when the exercise was not attempted yet (the stub's ``None``).
``make course`` counts the marks in the instructor run: with the solutions in, every check must pass.
"""

from __future__ import annotations

import html
import math
from collections.abc import Collection
from typing import Any

from IPython.display import Markdown

from synllm.course.build import FAIL_MARK, PASS_MARK

TODO_MARK = "…"


def _line(mark: str, color: str, what: str, text: str) -> Markdown:
    return Markdown(
        f"<span style='color:{color}; font-weight:bold'>{mark} {html.escape(what)}</span>: {html.escape(text)}"
    )


def _todo(what: str) -> Markdown:
    return _line(TODO_MARK, "#777", what, "not answered yet — replace the None in the exercise cell above.")


def _verdict(ok: bool, what: str, good: str, hint: str) -> Markdown:
    return _line(PASS_MARK, "#2a7a2a", what, good) if ok else _line(FAIL_MARK, "#b00020", what, hint)


def expect_between(
    value: Any, low: float, high: float, *, what: str, good: str = "plausible.", hint: str = ""
) -> Markdown:
    """✅ when ``low <= value <= high``; otherwise the hint, with the value and the expected range.

    >>> "✔" in expect_between(0.4, 0, 1, what="a share").data
    True
    """
    if value is None:
        return _todo(what)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _verdict(False, what, good, f"expected a number, got {type(value).__name__} {value!r}. {hint}")
    ok = not math.isnan(number) and low <= number <= high
    detail = f"got {number:.3g}, expected between {low:g} and {high:g}. {hint}".strip()
    return _verdict(ok, what, f"{number:.3g} — {good}", detail)


def expect_close(value: Any, expected: float, *, what: str, good: str = "right.", hint: str = "") -> Markdown:
    """✅ when ``value`` equals ``expected`` up to rounding; a missing value (NaN) matches a missing one.

    >>> "✔" in expect_close(float("nan"), float("nan"), what="a width").data
    True
    """
    if value is None:
        return _todo(what)
    try:
        number, target = float(value), float(expected)
    except (TypeError, ValueError):
        return _verdict(False, what, good, f"expected a number, got {type(value).__name__} {value!r}. {hint}")
    if math.isnan(target):
        ok = math.isnan(number)
    else:
        ok = not math.isnan(number) and math.isclose(number, target, rel_tol=1e-6, abs_tol=1e-9)
    return _verdict(ok, what, f"{number:.3g} — {good}", f"got {number:.3g}. {hint}".strip())


def expect_in(value: Any, allowed: Collection[Any], *, what: str, good: str = "right.", hint: str = "") -> Markdown:
    """✅ when ``value`` is one of ``allowed``.

    >>> "✔" in expect_in("p4", {"p4"}, what="the prompt type").data
    True
    """
    if value is None:
        return _todo(what)
    return _verdict(value in allowed, what, f"{value!r} — {good}", f"got {value!r}. {hint}".strip())


def expect_true(condition: Any, *, what: str, good: str = "yes.", hint: str = "") -> Markdown:
    """✅ when ``condition`` holds (None means not attempted yet)."""
    if condition is None:
        return _todo(what)
    return _verdict(bool(condition), what, good, hint or "not yet: look again at the cells above.")


def expect_words(text: Any, required: Collection[str], *, what: str, min_words: int = 15, hint: str = "") -> Markdown:
    """✅ when a written answer has at least ``min_words`` words and mentions every word in ``required``.

    Only a plausibility check: a lecturer still reads the answer.
    """
    if text is None or not str(text).strip():
        return _todo(what)
    words = str(text).split()
    lacking = [w for w in required if w.lower() not in str(text).lower()]
    ok = len(words) >= min_words and not lacking
    problem = (
        f"write at least {min_words} words (you wrote {len(words)})"
        if len(words) < min_words
        else f"mention {', '.join(repr(w) for w in lacking)}"
    )
    return _verdict(
        ok, what, "a conclusion that names its evidence (your lecturer reads the rest).", f"{problem}. {hint}".strip()
    )
