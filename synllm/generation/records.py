"""What the answer cache keeps per request: one record built from a backend's answer, bounded in size.

:func:`max_tokens_for` sets the token budget a request asks for. A backend's answer is
untrusted: a server may ignore ``max_tokens`` and send a million rows, or token counts
that are not numbers. :func:`answer_record` keeps at most :func:`answer_limit`
characters of the text (noting the length it had) and only counts that are whole
numbers, so a record written to ``raw.jsonl`` stays small and well-formed.

On resume, :func:`missing_requests` says which requests must be asked again whatever
rows the cache already holds, and :func:`was_cut` which answers stopped inside a row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from synllm.backends.base import Generation, GenerationRequest
from synllm.cards import Card, Column

#: Characters a single token can stand for, generously (tokens of the models in use average 3-4).
CHARS_PER_TOKEN = 16
#: Characters allowed beyond the token budget (chat templates, a stray preamble).
ANSWER_SLACK = 1024
#: The repair noted in a run's diagnostics for every answer cut to the limit.
CUT_NOTE = "answer cut to the length max_tokens allows"


def answer_limit(max_tokens: int) -> int:
    """The most characters an answer of ``max_tokens`` tokens can hold: ``16 * max_tokens + 1024``.

    >>> answer_limit(1000)
    17024
    """
    return CHARS_PER_TOKEN * max(int(max_tokens), 0) + ANSWER_SLACK


def _count(value: Any) -> int | None:
    """A token count as reported, when it is a non-negative whole number; else None."""
    return value if type(value) is int and value >= 0 else None


def answer_record(index: int, request: GenerationRequest, generation: Generation) -> dict[str, Any]:
    """The cache record of request ``index``: its seed, the answer (cut to the limit) and what it cost."""
    text = generation.text if isinstance(generation.text, str) else str(generation.text)
    limit = answer_limit(request.max_tokens)
    record = {
        "index": index,
        "seed": request.seed,
        "text": text[:limit],
        "backend": str(generation.backend),
        "model": str(generation.model),
        "prompt_tokens": _count(generation.prompt_tokens),
        "completion_tokens": _count(generation.completion_tokens),
        "elapsed_s": round(float(generation.elapsed_s), 4),
        "constraint": str(generation.constraint),
        "constraint_via": _via(generation),
        "finish_reason": None if generation.finish_reason is None else str(generation.finish_reason),
        "max_tokens": request.max_tokens,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if len(text) > limit:
        record["cut_from_chars"] = len(text)
    return record


def was_cut(record: Mapping[str, Any]) -> bool:
    """True when the answer stopped at its token budget (``finish_reason`` 'length') or was cut to the limit here."""
    return record.get("finish_reason") == "length" or "cut_from_chars" in record


def missing_requests(cached: Iterable[int]) -> list[int]:
    """The request indexes below the last cached one that have no answer: lost to a damaged line or a failure.

    A resumed run asks these again even when it already has enough rows, so its rows (the
    first N valid ones in request order) are the rows an undamaged run would have.

    >>> missing_requests([0, 3, 1])
    [2]
    """
    indexes = set(cached)
    return [i for i in range(max(indexes, default=0)) if i not in indexes]


def _via(generation: Generation) -> str | None:
    """The request field that carried the constraint (e.g. ``grammar``, ``json_object``), when the backend says."""
    via = (generation.extra or {}).get("constraint_via")
    return None if via is None else str(via)


def max_tokens_for(card: Card, batch_size: int, fmt: str) -> int:
    """A generous completion budget for ``batch_size`` rows: about one token per character of a row, plus slack."""
    per_row = sum(_cell_width(c) + 1 for c in card.synth_columns)
    per_row = per_row * (1.6 if fmt == "json" else 1.0)
    return int(batch_size * per_row * 1.3) + 64


def _cell_width(col: Column) -> int:
    if col.is_numeric:
        lo, hi = col.range
        digits = len(str(int(max(abs(lo), abs(hi)))))
        return digits + ((col.decimals or 0) + 1 if col.decimals else 0)
    return max(len(str(c)) for c in col.categories) if col.categories else 8
