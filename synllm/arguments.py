"""The rules for arguments of the public entry points, one table shared by the API and the command line.

:data:`RULES` says what each argument may be; :func:`check` applies a rule and raises
:class:`~synllm.errors.InvalidArgument` naming the argument (or its command-line flag),
the value and the fix. ``GenerationOptions``, ``generate``, ``run_grid``, ``synllm``
(the CLI) and the batch driver all check through here, so they refuse the same values,
and they do it before any file is touched. It imports only :mod:`synllm.errors` (and the
standard library), so any layer may use it.

Beyond the table: :func:`check_holdout` (a holdout that leaves every stratum rows on both
sides of a split), :func:`check_url` (a server address that parses) and
:class:`ArgumentParser` (command-line usage errors as one-line ``InvalidArgument``).
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, NoReturn
from urllib.parse import urlsplit

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
            limits.append(f"{'>' if self.low_open else '>='} {_limit(self.low)}")
        if self.high is not None:
            limits.append(f"{'<' if self.high_open else '<='} {_limit(self.high)}")
        return ("a whole number" if self.whole else "a number") + (" " + " and ".join(limits) if limits else "")


def _limit(value: float) -> str:
    """A limit as written: ``4294967295``, ``0.5``."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


#: The largest seed: numpy's and scikit-learn's random states are 32-bit (0 to 2**32 - 1).
MAX_SEED = 2**32 - 1
#: The largest count of rows, requests or parallel work: far above any real run, below what overflows.
MAX_COUNT = 10_000_000
#: The largest token count: llama.cpp and servers keep token counts in 32-bit integers.
MAX_TOKENS = 2**31 - 1
#: The longest wait in seconds (one day): longer ones overflow the clock of ``threading``.
MAX_SECONDS = 86_400

RULES: Mapping[str, Bound] = {
    "n_rows": Bound(whole=True, low=1, high=MAX_COUNT, hint="ask for at least one valid row"),
    "batch_size": Bound(whole=True, low=1, high=10_000, hint="ask for at least one row per request"),
    "rounds": Bound(whole=True, low=1, high=1_000, hint="1 is one shot; 3 asks twice more with corrections"),
    "seed": Bound(
        whole=True, low=0, high=MAX_SEED, hint="seeds and random states are whole numbers from 0 to 2**32 - 1 (numpy's)"
    ),
    "max_requests": Bound(whole=True, low=1, high=MAX_COUNT, optional=True, hint="leave it unset for the default"),
    "concurrency": Bound(
        whole=True, low=1, high=10_000, optional=True, hint="leave it unset for the backend's capacity"
    ),
    "max_parallel_runs": Bound(
        whole=True, low=1, high=10_000, optional=True, hint="leave it unset to fill the backend"
    ),
    "temperature": Bound(whole=False, low=0, high=2, hint="0 is greedy, 0.7 the usual"),
    "top_p": Bound(whole=False, low=0, high=1, low_open=True, hint="1 keeps every token, 0.9 the usual"),
    "k_examples": Bound(whole=True, low=0, high=10_000, hint="the number of real rows a prompt shows"),
    "max_tokens": Bound(
        whole=True, low=1, high=MAX_TOKENS, optional=True, hint="leave it unset for a budget from the card"
    ),
    "num_ctx": Bound(whole=True, low=1, high=MAX_TOKENS, optional=True, hint="leave it unset for the model's default"),
    "timeout_s": Bound(
        whole=False, low=0, high=MAX_SECONDS, low_open=True, optional=True, hint="seconds one model request may take"
    ),
    "holdout": Bound(whole=False, low=0, high=1, low_open=True, high_open=True, hint="the share of rows held out"),
    "cell_timeout_s": Bound(
        whole=True, low=1, high=MAX_SECONDS, optional=True, hint="seconds one notebook cell may take"
    ),
    "refresh_s": Bound(whole=False, low=0, high=MAX_SECONDS, low_open=True, hint="seconds between progress updates"),
}


def _shown(value: Any) -> str:
    if isinstance(value, Real) and not isinstance(value, bool | Integral):
        return f"{float(value):g}"
    if isinstance(value, Integral) and not isinstance(value, bool):
        digits = len(str(abs(int(value)))) if int(value).bit_length() < 4000 else None
        return str(value) if digits is not None and digits <= 40 else f"a number of {digits or 'over 1200'} digits"
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


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


def holdout_range(strata: Mapping[str, int]) -> tuple[int, int]:
    """(fewest, most) holdout rows that leave every stratum at least one row on each side of a split.

    ``strata`` maps each stratum to its row count. A stratified split gives a stratum of ``c``
    rows ``c * n_holdout / n`` holdout rows, rounded either way; at least 1 on each side is
    certain when ``c * n_holdout >= n`` and ``c * n_train >= n``.

    >>> holdout_range({"0": 90, "1": 10})
    (10, 90)
    """
    n = sum(strata.values())
    smallest = min(strata.values(), default=0)
    if smallest < 1:
        return 1, 0
    fewest = -(-n // smallest)  # ceil(n / smallest)
    return fewest, n - fewest


def check_holdout(holdout: Any, strata: Mapping[str, int], *, name: str = "holdout", what: str = "rows") -> float:
    """``holdout`` when it keeps :data:`RULES` ``['holdout']`` and leaves every stratum rows on both sides.

    ``strata`` maps each stratum (e.g. ``'stratum stroke=1'``) to its number of ``what``. The number of
    holdout rows is ``ceil(holdout * n)``, as scikit-learn's ``train_test_split`` counts it. Else
    InvalidArgument naming the stratum that could end up empty and the usable range.
    """
    holdout = check("holdout", holdout, name=name)
    n = sum(strata.values())
    fewest, most = holdout_range(strata)
    n_holdout = math.ceil(holdout * n)
    if fewest <= n_holdout <= most:
        return holdout
    side = "holdout" if n_holdout < fewest else "train"
    stratum, count = min(strata.items(), key=lambda item: item[1])
    if fewest > most:
        usable = "no holdout fraction can: the table is too small to split; give it more rows"
    else:
        low, high = _fraction_above(fewest, n), _fraction_below(most, n)
        usable = f"the largest usable {name} is {high:g}, the smallest {low:g}"
    raise InvalidArgument(
        f"{name} {_shown(holdout)} could leave {stratum} ({count} of {n} {what}) without a {side} row; " + usable
    )


def _fraction_below(rows: int, n: int) -> float:
    """The largest 4-decimal fraction ``f`` with ``ceil(f * n) <= rows``."""
    fraction = math.floor(rows / n * 10_000) / 10_000
    while fraction > 0 and math.ceil(fraction * n) > rows:
        fraction = round(fraction - 0.0001, 4)
    return fraction


def _fraction_above(rows: int, n: int) -> float:
    """The smallest 4-decimal fraction ``f`` with ``ceil(f * n) >= rows``."""
    fraction = math.ceil((rows - 1) / n * 10_000) / 10_000
    while fraction < 1 and math.ceil(fraction * n) < rows:
        fraction = round(fraction + 0.0001, 4)
    return fraction


_CREDENTIALS = re.compile(r"^((?:[^:/@]*://)?)[^/@]*@")
#: URL schemes a server address may have.
URL_SCHEMES = ("http", "https")


def check_url(value: Any, *, name: str = "url") -> str:
    """``value`` (stripped) when it is a server address that parses: ``[http[s]://]host[:port][/path]``.

    Else InvalidArgument naming ``name``: not text, an unclosed ``[`` of an IPv6 address, a
    scheme other than http or https, no host, or a port that is not 1-65535.

    >>> check_url("localhost:11434"), check_url("http://[::1]:8000/v1")
    ('localhost:11434', 'http://[::1]:8000/v1')
    """
    text = value.strip() if isinstance(value, str) else None
    fix = "give a server address like http://127.0.0.1:11434 or https://host/v1"
    if not text:
        raise InvalidArgument(f"{name} must be a server address, got {_shown(value)}; {fix}")
    shown = _shown(_CREDENTIALS.sub(r"\1***@", text))  # a password in the address is never echoed
    scheme = text.partition("://")[0].lower() if "://" in text else "http"
    try:
        parts = urlsplit(text if "://" in text else f"http://{text}")
        port = parts.port
    except ValueError as exc:
        raise InvalidArgument(f"{name} {shown} is not a URL ({exc}); {fix}") from None
    if scheme not in URL_SCHEMES:
        raise InvalidArgument(f"{name} {shown} has the scheme {scheme[:20]!r}, not http or https; {fix}")
    if not parts.hostname:
        raise InvalidArgument(f"{name} {shown} names no host; {fix}")
    if port == 0:
        raise InvalidArgument(f"{name} {shown} has port 0; ports are 1 to 65535; {fix}")
    return text


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are a one-line InvalidArgument (so a command exits 2, no usage dump)."""

    def error(self, message: str) -> NoReturn:
        raise InvalidArgument(f"{message} (see `{self.prog} --help`)")
