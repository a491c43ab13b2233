"""Test helpers for grammars and patterns, written independently of synllm's emitters.

:func:`gbnf_regex` turns the GBNF subset synllm emits (literals, classes, groups,
alternatives, rule references, ``{m,n}`` repetition) into a Python regex, so a test can
check exactly which texts a grammar accepts. :func:`sample_regex` draws a random text
matching a regular expression (the constructs synllm's patterns and grammars use), which
lets the fake servers answer as if they enforced a ``pattern`` or a ``grammar``.
"""

from __future__ import annotations

import random
import re
import re._constants as _sre
import re._parser as _parser

_TOKEN = re.compile(
    r'\s*(?:("(?:\\.|[^"\\])*")|(\[(?:\\.|[^\]\\])*\])|(\|)|(\()|(\))|(\{\d*,?\d*\}|[?*+])|([A-Za-z0-9-]+))'
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"'}


def gbnf_rules(grammar: str) -> dict[str, str]:
    """Rule name -> right-hand side, one rule per line."""
    rules = {}
    for line in grammar.strip().splitlines():
        name, body = line.split("::=", 1)
        assert name.strip() not in rules, f"rule {name.strip()} defined twice"
        rules[name.strip()] = body.strip()
    return rules


def decode_literal(quoted: str) -> str:
    """The text of a GBNF string literal."""
    body, out, i = quoted[1:-1], [], 0
    while i < len(body):
        if body[i] == "\\":
            nxt = body[i + 1]
            if nxt == "x":
                out.append(chr(int(body[i + 2 : i + 4], 16)))
                i += 4
                continue
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(body[i])
        i += 1
    return "".join(out)


def gbnf_regex(grammar: str, rule: str = "root") -> str:
    """A Python regex equivalent to one rule of a non-recursive GBNF grammar."""
    rules = gbnf_rules(grammar)

    def convert(name: str, depth: int = 0) -> str:
        assert depth < 20, "recursive grammar"
        body, pos, parts = rules[name], 0, []
        while pos < len(body):
            match = _TOKEN.match(body, pos)
            assert match and match.end() > pos, f"cannot read {body[pos:]!r}"
            pos = match.end()
            literal, klass, bar, opening, closing, repeat, ref = match.groups()
            if literal:
                parts.append("(?:" + re.escape(decode_literal(literal)) + ")")
            elif klass:
                parts.append(klass)
            elif bar:
                parts.append("|")
            elif opening:
                parts.append("(?:")
            elif closing:
                parts.append(")")
            elif repeat:
                parts.append(repeat)
            else:
                parts.append(convert(ref, depth + 1))
        return "(?:" + "".join(parts) + ")"

    return convert(rule)


def sample_regex(pattern: str, rng: random.Random) -> str:
    """A random text that ``re.fullmatch(pattern, text)`` accepts (no lookarounds or back-references)."""
    text = _sample(_parser.parse(pattern), rng)
    assert re.fullmatch(pattern, text), (pattern, text)
    return text


def sample_gbnf(grammar: str, rng: random.Random) -> str:
    """A random text a non-recursive GBNF grammar accepts."""
    return sample_regex(gbnf_regex(grammar), rng)


def _sample(parsed, rng: random.Random) -> str:
    out = []
    for op, arg in parsed:
        if op is _sre.LITERAL:
            out.append(chr(arg))
        elif op is _sre.IN:
            out.append(_sample_class(arg, rng))
        elif op is _sre.ANY:
            out.append(rng.choice("abcxyz0123"))
        elif op is _sre.BRANCH:
            out.append(_sample(rng.choice(arg[1]), rng))
        elif op is _sre.SUBPATTERN:
            out.append(_sample(arg[-1], rng))
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
            low, high, item = arg
            high = min(high, low + 3) if high is not _sre.MAXREPEAT else low + 3
            out.extend(_sample(item, rng) for _ in range(rng.randint(low, high)))
        elif op is _sre.AT:
            continue
        else:  # pragma: no cover - a construct the helpers never emit
            raise AssertionError(f"sample_regex cannot handle {op}")
    return "".join(out)


def _sample_class(items, rng: random.Random) -> str:
    choices: list[str] = []
    for op, arg in items:
        if op is _sre.LITERAL:
            choices.append(chr(arg))
        elif op is _sre.RANGE:
            choices.extend(chr(c) for c in range(arg[0], arg[1] + 1))
        elif op is _sre.NEGATE:
            raise AssertionError("negated classes are not sampled")
        else:  # pragma: no cover
            raise AssertionError(f"sample_regex cannot handle class item {op}")
    return rng.choice(choices)
