"""Structured output on servers: the constraint levels, and what each endpoint was found to honour.

A server that accepts a constraint does not always enforce it: vLLM ignores request
fields it does not know, llama.cpp's JSON-schema converter drops ``minimum``/``maximum``,
Ollama's support for ``pattern`` varies by version. So the strongest level a server
honours is found by probing, once per endpoint and level, never assumed. Levels,
strongest first:

``grammar``
    the card's GBNF grammar for the JSON answer (llama.cpp's servers: ``grammar``;
    vLLM: ``structured_outputs.grammar`` or ``guided_grammar``); range-exact.
``json_schema_patterns``
    the JSON schema whose numbers are strings with anchored patterns; range-exact
    where the server compiles patterns.
``json_schema``
    the schema with plain JSON numbers; the shape is kept, bounds are often ignored.
``none``
    free text, validated afterwards like any other answer.

A probe is a tiny request under a toy constraint of the level (built from the same
constructs as the real one: alternatives, digit classes, a decimal point, bounded
whitespace) with a prompt asking for something else ("hello"): only a server that
enforces the constraint answers with text that fits it.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from synllm.errors import InvalidArgument

#: Constraint levels, strongest first.
LEVELS = ("grammar", "json_schema_patterns", "json_schema", "none")
#: Levels under which every value a server lets through is inside the card's ranges.
RANGE_EXACT = frozenset({"grammar", "json_schema_patterns"})

PROBE_SYSTEM = "You are a helpful assistant."
PROBE_PROMPT = 'Reply with the single word "hello" and nothing else.'
#: The chat messages of every probe.
PROBE_MESSAGES = ({"role": "system", "content": PROBE_SYSTEM}, {"role": "user", "content": PROBE_PROMPT})
PROBE_MAX_TOKENS = 32
_PROBE_VALUE = re.compile(r"^(7[0-9][.][0-9]|8[0-4][.][0-9])$")
#: A GBNF grammar whose every text is ``{"probe": "7x.x"}`` (with optional whitespace).
PROBE_GRAMMAR = (
    'root ::= "{" ws "\\"probe\\"" ws ":" ws "\\"" ("7" [0-9] "." [0-9] | "8" [0-4] "." [0-9]) "\\"" ws "}"\n'
    'ws ::= | " " | "\\n" [ \\t]{0,20}\n'
)
#: The same answer as a JSON schema with a pattern.
PROBE_PATTERN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"probe": {"type": "string", "pattern": _PROBE_VALUE.pattern}},
    "required": ["probe"],
}
#: A plain schema: one enum value no model would write for the probe prompt.
PROBE_PLAIN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"probe": {"enum": ["synllm-probe"]}},
    "required": ["probe"],
}


def probe_schema(level: str) -> dict[str, Any]:
    """The toy schema that probes a schema level: with a pattern for ``json_schema_patterns``, else plain."""
    return PROBE_PATTERN_SCHEMA if level == "json_schema_patterns" else PROBE_PLAIN_SCHEMA


def probe_fits(level: str, text: str) -> bool:
    """True when a probe answer of ``level`` fits the probe's constraint (so the server enforced it)."""
    try:
        value = json.loads(text.strip())["probe"]
    except (ValueError, TypeError, KeyError, RecursionError):  # any answer at all may come back
        return False
    if level == "json_schema":
        return value == "synllm-probe"
    return isinstance(value, str) and _PROBE_VALUE.match(value) is not None


def has_patterns(schema: Any) -> bool:
    """True when a JSON schema holds a ``pattern`` anywhere."""
    if isinstance(schema, Mapping):
        return "pattern" in schema or any(has_patterns(v) for v in schema.values())
    if isinstance(schema, list | tuple):
        return any(has_patterns(v) for v in schema)
    return False


def request_levels(grammar: str | None, schema: Any, plain_schema: Any) -> list[str]:
    """The levels a request can be sent at, strongest first (``none`` always last)."""
    levels = ["grammar"] if grammar else []
    if schema is not None:
        levels.append("json_schema_patterns" if has_patterns(schema) else "json_schema")
    if plain_schema is not None and "json_schema" not in levels:
        levels.append("json_schema")
    return [*levels, "none"]


def schema_for(level: str, schema: Any, plain_schema: Any) -> Any:
    """The schema sent at a schema ``level``: the patterned one, or the plain one when there is one."""
    if level == "json_schema" and plain_schema is not None:
        return plain_schema
    return schema


def check_level(value: str, allowed: Iterable[str]) -> str:
    """``value`` when it is ``auto`` or one of ``allowed``; else InvalidArgument."""
    choices = ["auto", *allowed]
    if value not in choices:
        raise InvalidArgument(f"constraint must be one of {choices}, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a probe found for one level: honoured (and through which field or form), or why not."""

    honoured: bool
    via: str | None = None
    note: str = ""

    def describe(self) -> str:
        """One phrase for a manifest, e.g. ``honoured via grammar`` or ``ignored``."""
        if self.honoured:
            return f"honoured via {self.via}" if self.via else "honoured"
        return self.note or "not honoured"


class LevelMemory:
    """Per endpoint: which levels were probed and what was found; probes run one at a time.

    ``supported`` are the levels the backend can send, strongest first; ``start`` caps the
    strongest one tried (``auto``: all of them).
    """

    def __init__(self, supported: Iterable[str], start: str = "auto") -> None:
        self.supported = tuple(level for level in LEVELS if level in set(supported) | {"none"})
        check_level(start, self.supported)
        self.start = start
        self._verdicts: dict[str, Verdict] = {}
        self._lock = threading.Lock()
        self.last_level: str | None = None
        self._failures = 0  # probes that raised so far
        self._failure: BaseException | None = None  # the last one's error

    def allowed(self, wanted: Iterable[str]) -> list[str]:
        """The ``wanted`` levels this endpoint may use, strongest first, from ``start`` down."""
        first = 0 if self.start == "auto" else LEVELS.index(self.start)
        return [level for level in LEVELS[first:] if level in set(wanted) and level in self.supported]

    def choose(self, wanted: Iterable[str], probe: Callable[[str], Verdict]) -> str:
        """The strongest allowed level the server honours; probes a level the first time it is needed.

        A probe that fails (the server is down) raises and leaves the level unknown; the
        requests that were waiting for it fail with the same error instead of probing again
        (so a dead server costs one probe's attempts, not one per waiting request).
        """
        seen = self._failures
        with self._lock:
            if self._failures != seen and self._failure is not None:
                raise self._failure
            for level in self.allowed(wanted):
                if level == "none":
                    break
                if level not in self._verdicts:
                    try:
                        self._verdicts[level] = probe(level)
                    except BaseException as exc:
                        self._failures, self._failure = self._failures + 1, exc
                        raise
                if self._verdicts[level].honoured:
                    self.last_level = level
                    return level
            self.last_level = "none"
            return "none"

    def verdict(self, level: str) -> Verdict | None:
        """What the probe of ``level`` found (None when not probed)."""
        with self._lock:
            return self._verdicts.get(level)

    def refuse(self, level: str, reason: str) -> None:
        """Remember that a real request at ``level`` was refused (the next request steps down)."""
        with self._lock:
            self._verdicts[level] = Verdict(False, note=f"refused ({reason[:200]})")

    def forget(self, levels: Iterable[str]) -> None:
        """Drop what was found for ``levels`` (they are probed again when next needed)."""
        with self._lock:
            for level in levels:
                self._verdicts.pop(level, None)

    def summary(self) -> dict[str, Any]:
        """For a manifest: the level used last and each supported level's verdict."""
        with self._lock:
            found = {
                level: (self._verdicts[level].describe() if level in self._verdicts else "not probed")
                for level in self.supported
                if level != "none"
            }
            return {"constraint": self.last_level, "constraint_probes": found, "constraint_cap": self.start}
