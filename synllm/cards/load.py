"""Read a card from YAML and check it: keys, kinds, ranges, rules and cross-references."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from synllm import config
from synllm.cards.expressions import card_scope, closest_hint, compile_expression
from synllm.cards.model import Card, Column, Kind, Rule
from synllm.cards.rules import rule_expressions
from synllm.errors import CardError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_COLUMN_KEYS = set(Column.__slots__)
_RULE_KEYS = set(Rule.__slots__)
_CARD_KEYS = {"name", "title", "description", "domain", "file", "columns", "roles", "missing", "rules"}
_ROLE_KEYS = {
    "target",
    "target_positive",
    "outcomes",
    "identifiers",
    "quasi_identifiers",
    "sensitive",
    "predictors",
    "leakage",
}
_MEASURES = {
    "rate": ("outcome", "group", "versus"),
    "mean": ("value", "group", "versus"),
    "correlation": ("value", "against"),
}
_EXPECT = {"rate": ("higher", "lower"), "mean": ("higher", "lower"), "correlation": ("positive", "negative")}


def available_cards() -> list[str]:
    """Names of the cards shipped with synllm."""
    return sorted(p.stem for p in config.CARDS_DIR.glob("*.yaml"))


def card_path(name_or_path: str | Path) -> Path:
    """Resolve a built-in card name or a path to a card file (an absolute path comes back).

    A relative path is taken from the current folder, then from the project folder (a
    notebook runs inside ``notebooks/``, while the user gave the path from the project).
    """
    text = str(name_or_path)
    if text in available_cards():
        return config.CARDS_DIR / f"{text}.yaml"
    path = Path(text).expanduser()
    tried = [path] if path.is_absolute() else [Path.cwd() / path, config.PROJ_ROOT / path]
    for candidate in tried:
        if candidate.is_file():
            return candidate.resolve()
    looked = " or ".join(str(p) for p in dict.fromkeys(tried))
    raise CardError(
        f"no dataset card {text!r} (looked for {looked}): give a built-in name ({', '.join(available_cards())}) "
        "or the path of a card YAML file, absolute or relative to the current folder; "
        "`synllm card draft data.csv` writes one (see README, 'Bring your own dataset')"
    )


def load_card(name_or_path: str | Path) -> Card:
    """Read and check a card, by built-in name or by path."""
    path = card_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CardError(f"{path}: not valid YAML ({exc}); fix the file and retry") from None
    if not isinstance(raw, Mapping):
        raise CardError(f"{path}: a card must be a YAML mapping with keys {sorted(_CARD_KEYS)}")
    return card_from_dict(raw, path=path)


def card_from_dict(raw: Mapping[str, Any], *, path: Path | None = None) -> Card:
    """Build a Card from parsed YAML, checking keys, kinds and cross-references."""
    where = str(path) if path else "card"
    _check_keys(raw, _CARD_KEYS, where)
    for key in ("name", "columns", "roles", "file"):
        if key not in raw:
            raise CardError(f"{where}: missing required key {key!r}")
    if not _NAME.fullmatch(str(raw["name"])):
        raise CardError(
            f"{where}: name {raw['name']!r} must be letters, digits, '_' or '-' (at most 64; it names the report "
            "folder), e.g. name: heart_disease"
        )
    columns = tuple(_column(c, where) for c in raw["columns"])
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise CardError(f"{where}: duplicate column names in {names}")
    roles = raw["roles"] or {}
    _check_keys(roles, _ROLE_KEYS, f"{where} roles")
    missing = raw.get("missing") or {}
    _check_keys(missing, {"tokens", "notes"}, f"{where} missing")
    rules = tuple(_rule(r, where) for r in raw.get("rules") or [])
    file = _data_file(Path(raw["file"]), path)
    card = Card(
        name=str(raw["name"]),
        title=str(raw.get("title", raw["name"])),
        description=str(raw.get("description", "")).strip(),
        domain=str(raw.get("domain", raw["name"])),
        file=file,
        columns=columns,
        target=str(roles.get("target", "")),
        target_positive=str(roles["target_positive"]) if roles.get("target_positive") else None,
        outcomes=tuple(roles.get("outcomes") or ()),
        identifiers=tuple(roles.get("identifiers") or ()),
        quasi_identifiers=tuple(roles.get("quasi_identifiers") or ()),
        sensitive=tuple(roles.get("sensitive") or ()),
        predictors=tuple(roles.get("predictors") or ()),
        leakage=tuple(roles.get("leakage") or ()),
        missing_tokens=tuple(str(t) for t in missing.get("tokens") or ()),
        missing_notes=str(missing.get("notes", "")).strip(),
        rules=rules,
        path=path,
    )
    _check_references(card, where)
    _check_expressions(card, where)
    return card


def _data_file(file: Path, card_file: Path | None) -> Path:
    """Where a card's relative ``file`` lives: beside the card, else in ``data/raw``.

    A user card whose CSV exists in neither place points beside itself, so a
    'file not found' error names the folder the user is working in.
    """
    if file.is_absolute():
        return file
    raw_copy = config.RAW_DIR / file
    if card_file is None or card_file.parent == config.CARDS_DIR.resolve():
        return raw_copy
    beside = card_file.parent / file
    return beside if beside.exists() or not raw_copy.exists() else raw_copy


def _check_keys(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(raw) - allowed
    if unknown:
        raise CardError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")


def _column(raw: Mapping[str, Any], where: str) -> Column:
    name = raw.get("name", "?")
    _check_keys(raw, _COLUMN_KEYS, f"{where} column {name!r}")
    try:
        kind = Kind(raw.get("kind"))
    except ValueError:
        raise CardError(
            f"{where} column {name!r}: kind {raw.get('kind')!r} is not one of {[k.value for k in Kind]}"
        ) from None
    rng = raw.get("range")
    if rng is not None and (len(rng) != 2 or rng[0] > rng[1]):
        raise CardError(f"{where} column {name!r}: range must be [low, high], got {rng}")
    cats = raw.get("categories")
    if kind is Kind.BINARY and cats is None:
        cats = [0, 1]
    if kind in (Kind.BINARY, Kind.CATEGORICAL) and not cats:
        raise CardError(f"{where} column {name!r}: a {kind.value} column needs 'categories'")
    if kind is Kind.BINARY and len(cats) != 2:
        raise CardError(f"{where} column {name!r}: a binary column has exactly 2 categories, got {cats}")
    if kind in (Kind.INTEGER, Kind.FLOAT) and rng is None:
        raise CardError(f"{where} column {name!r}: a numeric column needs a plausible 'range'")
    codes = _missing_codes(raw, f"{where} column {name!r}")
    return Column(
        name=str(name),
        kind=kind,
        description=str(raw.get("description", "")).strip(),
        unit=raw.get("unit"),
        range=(float(rng[0]), float(rng[1])) if rng is not None else None,
        categories=tuple(cats) if cats is not None else None,
        decimals=raw.get("decimals", 0 if kind is Kind.INTEGER else None),
        nullable=bool(raw.get("nullable", bool(codes))),
        missing=raw.get("missing"),
        missing_codes=codes,
    )


def _missing_codes(raw: Mapping[str, Any], where: str) -> tuple[Any, ...]:
    """A column's own missing codes: a list of numbers or text; they make the column nullable."""
    codes = raw.get("missing_codes")
    codes = [] if codes is None else codes
    if not isinstance(codes, list) or not all(isinstance(c, (int, float, str)) for c in codes):
        raise CardError(f"{where}: missing_codes must be a list of values, e.g. [0] or ['-9']; got {codes!r}")
    if codes and raw.get("nullable") is False:
        raise CardError(
            f"{where}: has missing_codes {codes} but says 'nullable: false'; a coded cell is a missing value, "
            "so remove 'nullable: false' (or the codes, if they are real values)"
        )
    return tuple(codes)


def _rule(raw: Mapping[str, Any], where: str) -> Rule:
    rid = raw.get("id", "?")
    _check_keys(raw, _RULE_KEYS, f"{where} rule {rid!r}")
    kind = raw.get("kind")
    fields = {k: raw[k] for k in _RULE_KEYS if k in raw}
    if kind == "hard":
        if not raw.get("require"):
            raise CardError(f"{where} rule {rid!r}: a hard rule needs 'require'")
    elif kind == "soft":
        measure = raw.get("measure")
        if measure not in _MEASURES:
            raise CardError(f"{where} rule {rid!r}: a soft rule needs measure 'rate', 'mean' or 'correlation'")
        need = _MEASURES[measure]
        lacking = [k for k in need if not raw.get(k)]
        if lacking:
            raise CardError(f"{where} rule {rid!r}: a soft {measure} rule needs {lacking}")
        extra = [k for k in ("outcome", "value", "group", "versus", "against") if raw.get(k) and k not in need]
        if extra:
            raise CardError(f"{where} rule {rid!r}: a soft {measure} rule takes {list(need)}, not {extra}")
        fields["expect"] = raw.get("expect", _EXPECT[measure][0])
        if fields["expect"] not in _EXPECT[measure]:
            choices = " or ".join(repr(e) for e in _EXPECT[measure])
            raise CardError(f"{where} rule {rid!r}: expect must be {choices} for a {measure} rule")
    else:
        raise CardError(f"{where} rule {rid!r}: kind must be 'hard' or 'soft', got {kind!r}")
    if not raw.get("statement"):
        raise CardError(f"{where} rule {rid!r}: needs a plain-language 'statement'")
    return Rule(**fields)


def _check_references(card: Card, where: str) -> None:
    names = card.column_names
    roles = {
        "target": [card.target] if card.target else [],
        "outcomes": card.outcomes,
        "identifiers": card.identifiers,
        "quasi_identifiers": card.quasi_identifiers,
        "sensitive": card.sensitive,
        "predictors": card.predictors,
        "leakage": card.leakage,
    }
    for role, cols in roles.items():
        for col in cols:
            if col not in names:
                raise CardError(
                    f"{where}: roles.{role} names {col!r}, which is not a column of the card"
                    f"{closest_hint(col, names)}; fix the spelling in the role or in the column list"
                )
    for col in card.identifiers:
        if card.column(col).kind is not Kind.IDENTIFIER:
            raise CardError(f"{where}: identifier {col!r} must have kind 'identifier'")
    for col in card.leakage:
        if col == card.target or col in card.predictors:
            role = "the target" if col == card.target else "in roles.predictors"
            raise CardError(
                f"{where}: {col!r} is a leakage column (measured after the outcome) and {role}; "
                "remove it from one of them"
            )


def _check_expressions(card: Card, where: str) -> None:
    """Every rule expression and the target's positive class: allowed constructs, known columns, fitting types."""
    scope = card_scope(card)
    for rule in card.rules:
        rule_expressions(rule, scope, where=where)
    if card.target_positive:
        if not card.target:
            raise CardError(f"{where}: roles.target_positive needs roles.target (the column it is a condition on)")
        expr = compile_expression(card.target_positive, scope, where=f"{where} roles.target_positive")
        if set(expr.names) != {card.target}:
            raise CardError(
                f"{where}: roles.target_positive ({card.target_positive!r}) must be a condition on the target "
                f'column {card.target!r} alone, e.g. "{card.target} > 0"; it reads {list(expr.names)}'
            )
