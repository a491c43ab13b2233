"""The rules for arguments of the public entry points, one table shared by the API and the command line.

:data:`RULES` says what each argument may be; :func:`check` applies a rule and raises
:class:`~synllm.errors.InvalidArgument` naming the argument (or its command-line flag),
the value and the fix. ``GenerationOptions``, ``generate``, ``run_grid``, ``synllm``
(the CLI) and the batch driver all check through here, so they refuse the same values,
and they do it before any file is touched. It imports only :mod:`synllm.errors`, so any
layer may use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from synllm.errors import InvalidArgument


@dataclass(frozen=True, slots=True, kw_only=True)
class Bound:
    """What one argument may be: a whole number or a finite number within limits (or None when ``optional``)."""

    whole: bool
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False
    hint: str = ""

    def admits(self, value: float) -> bool:
        """True when ``value`` lies within the limits."""
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def describe(self) -> str:
        """E.g. 'a number > 0 and <= 1'."""
        limits = []
        if self.low is not None:
            limits.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            limits.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        return ("a whole number" if self.whole else "a number") + (" " + " and ".join(limits) if limits else "")


RULES: Mapping[str, Bound] = {
    "n_rows": Bound(whole=True, low=1, hint="ask for at least one valid row"),
    "batch_size": Bound(whole=True, low=1, hint="ask for at least one row per request"),
    "seed": Bound(whole=True, low=0, hint="seeds and random states are whole numbers from 0"),
    "max_requests": Bound(whole=True, low=1, optional=True, hint="leave it unset for the default"),
    "concurrency": Bound(whole=True, low=1, optional=True, hint="leave it unset for the backend's capacity"),
    "max_parallel_runs": Bound(whole=True, low=1, optional=True, hint="leave it unset to fill the backend"),
    "temperature": Bound(whole=False, low=0, high=2, hint="0 is greedy, 0.7 the usual"),
    "top_p": Bound(whole=False, low=0, high=1, low_open=True, hint="1 keeps every token, 0.9 the usual"),
    "k_examples": Bound(whole=True, low=0, hint="the number of real rows a prompt shows"),
    "max_tokens": Bound(whole=True, low=1, optional=True, hint="leave it unset for a budget from the card"),
    "num_ctx": Bound(whole=True, low=1, optional=True, hint="leave it unset for the model's default"),
    "timeout_s": Bound(whole=False, low=0, low_open=True, optional=True, hint="seconds one model request may take"),
    "holdout": Bound(whole=False, low=0, high=1, low_open=True, high_open=True, hint="the share of rows held out"),
    "refresh_s": Bound(whole=False, low=0, low_open=True, hint="seconds between progress updates"),
}


def _shown(value: Any) -> str:
    if isinstance(value, Real) and not isinstance(value, bool | Integral):
        return f"{float(value):g}"
    return str(value) if isinstance(value, Integral) and not isinstance(value, bool) else repr(value)


def check(rule: str, value: Any, *, name: str | None = None) -> Any:
    """``value`` (as int or float) when it keeps :data:`RULES` ``[rule]``; else InvalidArgument naming ``name``."""
    bound = RULES[rule]
    if value is None and bound.optional:
        return None
    number: float | int | None = None
    if isinstance(value, Integral) and not isinstance(value, bool):
        number = int(value)
    elif not bound.whole and isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value):
        number = float(value)
    if number is None or not bound.admits(number):
        hint = f"; {bound.hint}" if bound.hint else ""
        raise InvalidArgument(f"{name or rule} must be {bound.describe()}, got {_shown(value)}{hint}")
    return number


def check_values(values: Mapping[str, Any], rules: Mapping[str, str], *, name: Callable[[str], str] = str) -> None:
    """Check ``values[key]`` (one value, or a list of them) by rule ``rules[key]`` for every key present."""
    for key, rule in rules.items():
        if key in values:
            given = values[key]
            for value in given if isinstance(given, list | tuple) else [given]:
                check(rule, value, name=name(key))
