"""Parsing untrusted answers, fuzzed with a seeded generator: never an exception, cuts keep exactly the whole rows.

Every answer is cut at a random place (as ``max_tokens`` would) or mangled at random; the
parser must read the rows before the cut, mark the rest ``cut``, and never raise.
"""

from __future__ import annotations

import json
import random

import pytest

from synllm.cards import load_card
from synllm.dataset import load_dataset
from synllm.dataset.schema import format_row
from synllm.generation.parsing import parse_text, validate_rows


@pytest.fixture(scope="module")
def stroke():
    table, card = load_dataset("stroke")
    lines = [format_row(r, card) for r in table[card.synth_names].head(200).to_dict("records")]
    checked = validate_rows([line.split(",") for line in lines], card)
    return card, [lines[p] for p in checked.valid_positions]


def _answer(rng: random.Random, lines: list[str], shape: str, card) -> tuple[str, list[int]]:
    """(answer text, the position in it where each row ends) for rows drawn from ``lines``."""
    rows = [line.split(",") for line in rng.sample(lines, rng.randint(1, 8))]
    if shape == "csv":
        text, ends = "", []
        for row in rows:
            text += ",".join(row)
            ends.append(len(text))
            text += "\n"
        return text, ends
    items = [dict(zip(card.synth_names, r)) for r in rows] if shape == "objects" else rows
    parts = [json.dumps(item) for item in items]
    head = '{"rows": [' if shape == "rows" else "["
    text, ends = head, []
    for i, part in enumerate(parts):
        text += part
        ends.append(len(text))
        text += ", " if i < len(parts) - 1 else ""
    return text + ("]}" if shape == "rows" else "]"), ends


@pytest.mark.parametrize("shape", ["csv", "rows", "bare", "objects"])
def test_a_cut_anywhere_keeps_exactly_the_rows_that_ended_before_it(stroke, shape):
    card, lines = stroke
    rng = random.Random(f"cut-{shape}")
    for _ in range(150):
        text, ends = _answer(rng, lines, shape, card)
        at = rng.randint(1, len(text))
        prefix = text[:at]
        checked = validate_rows(parse_text(prefix, card, cut=True).rows, card)
        # A CSV row counts once its newline arrived: without it, a last value may be cut short ("228.69" -> "22").
        whole = sum(end < at for end in ends) if shape == "csv" else sum(end <= at for end in ends)
        assert len(checked.valid) == whole, (prefix, checked.rejected)
        assert set(checked.reasons) <= {"cut"} and checked.reasons.get("cut", 0) <= 1, (prefix, checked.reasons)


def _mangle(rng: random.Random, text: str) -> str:
    """``text`` with a few random edits: bytes dropped, doubled, swapped for brackets, quotes, commas, controls."""
    pieces = list(text)
    for _ in range(rng.randint(1, 6)):
        if not pieces:
            break
        i = rng.randrange(len(pieces))
        what = rng.random()
        if what < 0.3:
            del pieces[i]
        elif what < 0.6:
            pieces.insert(i, rng.choice('[]{},":\n\r\t\\\x00\u2028` '))
        else:
            pieces[i] = chr(rng.randrange(0x20, 0x2FFF))
    return "".join(pieces)


def test_random_answers_never_raise(stroke):
    card, lines = stroke
    rng = random.Random(2208)
    hostile = ["[" * 100_000, "{" * 50_000, '{"rows": ' + "[" * 100_000, "```" * 1000, '"' * 10_000, "\x00" * 100]
    hostile.append("a" * 200_000)  # longer than the csv module's field limit
    for text in hostile:
        for cut in (False, True):
            validate_rows(parse_text(text, card, cut=cut).rows, card)
    for i in range(3000):
        text, _ = _answer(rng, lines, rng.choice(["csv", "rows", "bare", "objects"]), card)
        text = _mangle(rng, text)[: rng.randint(0, len(text) + 5)]
        parsed = parse_text(text, card, cut=bool(i % 2))
        assert all(isinstance(cell, str) for row in parsed.rows for cell in row)
        if i % 10 == 0:  # validation is pandas work: check a sample of the parses
            checked = validate_rows(parsed.rows, card)
            assert len(checked.valid) + len(checked.rejected) == len(parsed.rows)


def test_the_cards_all_parse_their_own_cut_answers():
    """Every built-in card: a CSV answer cut inside its last row keeps the rows before it."""
    for name in ("diabetes", "cirrhosis", "stroke"):
        card = load_card(name)
        table, _ = load_dataset(name)
        rows = [format_row(r, card) for r in table[card.synth_names].head(40).to_dict("records")]
        valid = validate_rows([r.split(",") for r in rows], card)
        good = [rows[p] for p in valid.valid_positions][:3]
        text = "\n".join(good) + "\n" + good[0][: len(good[0]) // 2]
        checked = validate_rows(parse_text(text, card, cut=True).rows, card)
        assert len(checked.valid) == 3 and checked.reasons == {"cut": 1}, name
