"""Read a card from YAML and check it: fields (:mod:`.schema`), rules, cross-references and where its data may be.

The YAML is read with limits (:mod:`synllm.yamlsafe`); a card's ``file`` must lie inside
the card's folder, ``data/raw`` or a folder the caller names (:func:`data_file`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from synllm import config, yamlsafe
from synllm.cards.expressions import card_scope, closest_hint, compile_expression
from synllm.cards.model import Card, Column, Kind, Rule
from synllm.cards.rules import rule_expressions
from synllm.cards.schema import ColumnSpec, RuleSpec, shown, validated_card, validated_rules
from synllm.errors import CardError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
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


def load_card(name_or_path: str | Path, *, data_dir: str | Path | None = None) -> Card:
    """Read and check a card, by built-in name or by path.

    The card's ``file`` must lie inside the card's folder (or ``data/raw``, or ``data_dir``:
    a folder the caller names, by default ``$SYNLLM_DATA_DIR`` when set).
    """
    path = card_path(name_or_path)
    try:
        with path.open("rb") as handle:
            data = handle.read(yamlsafe.MAX_DOCUMENT_CHARS * 4 + 1)
        if len(data) > yamlsafe.MAX_DOCUMENT_CHARS * 4:
            raise yamlsafe.YamlLimitError(f"more than {yamlsafe.MAX_DOCUMENT_CHARS:,} characters; shorten it")
        raw = yamlsafe.safe_load(data)
    except OSError as exc:
        raise CardError(f"{path}: cannot be read ({exc.strerror or exc}); check the path and its permissions") from None
    except yamlsafe.YamlLimitError as exc:
        raise CardError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise CardError(f"{path}: not valid YAML ({exc}); fix the file and retry") from None
    if data_dir is None and os.environ.get("SYNLLM_DATA_DIR"):
        data_dir = os.environ["SYNLLM_DATA_DIR"]
    return card_from_dict(raw, path=path, data_dir=data_dir)


def card_from_dict(raw: Mapping[str, Any], *, path: Path | None = None, data_dir: str | Path | None = None) -> Card:
    """Build a Card from parsed YAML, checking types and ranges (:mod:`.schema`), then cross-references."""
    where = str(path) if path else "card"
    spec = validated_card(raw, where)
    if not _NAME.fullmatch(spec.name):
        raise CardError(
            f"{where}: name {shown(spec.name)} must be letters, digits, '_' or '-' (at most 64; it names the report "
            "folder), e.g. name: heart_disease"
        )
    columns = tuple(_column(c, where) for c in spec.columns)
    names = [c.name for c in columns]
    if repeated := sorted({n for n, k in Counter(names).items() if k > 1}):
        raise CardError(f"{where}: duplicate column names {repeated[:10]}; give each column its own name")
    rules = tuple(_rule(r, where) for r in spec.rules)
    roles, missing = spec.roles, spec.missing
    card = Card(
        name=spec.name,
        title=spec.title or spec.name,
        description=spec.description.strip(),
        domain=spec.domain or spec.name,
        file=data_file(spec.file, path, where=where, data_dir=data_dir),
        columns=columns,
        target=roles.target,
        target_positive=roles.target_positive or None,
        outcomes=tuple(roles.outcomes),
        identifiers=tuple(roles.identifiers),
        quasi_identifiers=tuple(roles.quasi_identifiers),
        sensitive=tuple(roles.sensitive),
        predictors=tuple(roles.predictors),
        leakage=tuple(roles.leakage),
        linkability_columns=_linkability(roles.linkability, where),
        missing_tokens=tuple(str(t) for t in missing.tokens),
        missing_notes=missing.notes.strip(),
        rules=rules,
        path=path,
    )
    _check_references(card, where)
    _check_expressions(card, where)
    return card


def add_rules(card: Card, rules: str | Sequence[Mapping[str, Any]]) -> Card:
    """``card`` with more rules, checked as a card file's rules are (a new card; ``card`` is unchanged).

    ``rules`` is YAML text of a rule list (as under ``rules:`` in a card file) or the parsed mappings.
    """
    where = f"{card.name} (added rules)"
    if isinstance(rules, str):
        try:
            rules = yamlsafe.safe_load(rules)
        except yaml.YAMLError as exc:
            raise CardError(
                f"{where}: not valid YAML ({exc}); write a list of rules, each starting with '- id:'"
            ) from None
    if isinstance(rules, Mapping):
        rules = [rules]
    if not isinstance(rules, Sequence) or isinstance(rules, str) or not all(isinstance(r, Mapping) for r in rules):
        raise CardError(f"{where}: give a list of rules, each a mapping with id, kind, statement, ...")
    added = tuple(_rule(spec, where) for spec in validated_rules(list(rules), where))
    ids = [r.id for r in (*card.rules, *added)]
    if repeated := sorted({i for i in ids if ids.count(i) > 1}):
        raise CardError(f"{where}: rule id(s) {repeated} are already used; give each rule its own id")
    extended = dataclasses.replace(card, rules=(*card.rules, *added))
    _check_expressions(extended, where)
    return extended


def data_file(text: str, card_file: Path | None, *, where: str = "card", data_dir: str | Path | None = None) -> Path:
    """Where a card's ``file`` lives; it must lie inside the card's folder, ``data_dir`` or ``data/raw``.

    A relative name is taken from the card's folder (``data/raw`` for a built-in card or a
    card without a file), then from ``data_dir``, then from ``data/raw``; the first that
    exists wins. A user card whose CSV exists in none of them points beside itself, so a
    'file not found' error names the folder the user is working in. A path that leaves the
    allowed folders (``../x``, an absolute path elsewhere, a link to elsewhere) is refused:
    a card is data, and must not make synllm read the user's other files.
    """
    if "\x00" in text:
        raise CardError(f"{where}: file {shown(text)} holds a NUL character; give the CSV's file name")
    own = card_file is not None and card_file.parent != config.CARDS_DIR.resolve()
    base = card_file.parent if own else config.RAW_DIR
    named = [Path(data_dir).expanduser()] if data_dir is not None else []
    roots = [base, *named, config.RAW_DIR]
    file = Path(text)
    candidates = [file] if file.is_absolute() else [root / file for root in dict.fromkeys(roots)]
    fallback = None
    for candidate in candidates:
        inside = any(_within(candidate, root) for root in roots)
        if os.path.lexists(candidate):
            if inside:
                return candidate
            break  # it exists but leads outside (``..``, a link): refuse, look no further
        fallback = fallback or (candidate if inside else None)
    else:
        if fallback is not None:
            return fallback
    folders = ", ".join(str(r) for r in dict.fromkeys(roots))
    raise CardError(
        f"{where}: file {shown(text)} lies outside the folders a card may read ({folders}): move the CSV into "
        "the card's folder (a subfolder is fine) and write its name, e.g. file: data.csv, or name the data folder "
        "explicitly (load_card(..., data_dir=...) or the SYNLLM_DATA_DIR environment variable)"
    )


def _within(candidate: Path, root: Path) -> bool:
    """True when ``candidate``, links followed, lies inside ``root`` (links followed too)."""
    try:
        return candidate.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError, ValueError):
        return False


def _linkability(sets: list[list[str]] | None, where: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    if sets is None:
        return None
    first, second = (tuple(dict.fromkeys(s)) for s in sets)
    if not first or not second:
        raise CardError(f"{where}: roles.linkability needs two non-empty lists of columns, e.g. [[age, sex], [bmi]]")
    if shared := [c for c in first if c in second]:
        raise CardError(
            f"{where}: roles.linkability lists {shared[:10]} in both sets; the two known-column sets must be disjoint"
        )
    return first, second


def _column(spec: ColumnSpec, where: str) -> Column:
    name = spec.name
    kind = Kind(spec.kind)
    cats = spec.categories
    if kind is Kind.BINARY and cats is None:
        cats = [0, 1]
    if kind in (Kind.BINARY, Kind.CATEGORICAL) and not cats:
        raise CardError(f"{where} column {name!r}: a {kind.value} column needs 'categories'")
    if kind is Kind.BINARY and len(cats) != 2:
        raise CardError(f"{where} column {name!r}: a binary column has exactly 2 categories, got {shown(cats)}")
    if cats is not None and len({str(c) for c in cats}) != len(cats):
        raise CardError(f"{where} column {name!r}: categories repeat a value ({shown(cats)}); list each once")
    if kind in (Kind.INTEGER, Kind.FLOAT) and spec.range is None:
        raise CardError(f"{where} column {name!r}: a numeric column needs a plausible 'range'")
    codes = tuple(spec.missing_codes or ())
    if codes and spec.nullable is False:
        raise CardError(
            f"{where} column {name!r}: has missing_codes {list(codes)} but says 'nullable: false'; a coded cell is "
            "a missing value, so remove 'nullable: false' (or the codes, if they are real values)"
        )
    return Column(
        name=name,
        kind=kind,
        description=spec.description.strip(),
        unit=spec.unit,
        range=(spec.range[0], spec.range[1]) if spec.range is not None else None,
        categories=tuple(cats) if cats is not None else None,
        decimals=spec.decimals if spec.decimals is not None else (0 if kind is Kind.INTEGER else None),
        nullable=spec.nullable if spec.nullable is not None else bool(codes),
        missing=spec.missing,
        missing_codes=codes,
    )


def _rule(spec: RuleSpec, where: str) -> Rule:
    rid = spec.id
    fields = spec.model_dump(exclude_none=True)
    if spec.kind == "hard":
        if not spec.require:
            raise CardError(f"{where} rule {rid!r}: a hard rule needs 'require'")
    else:
        measure = spec.measure
        if measure is None:
            raise CardError(f"{where} rule {rid!r}: a soft rule needs measure 'rate', 'mean' or 'correlation'")
        need = _MEASURES[measure]
        lacking = [k for k in need if not fields.get(k)]
        if lacking:
            raise CardError(f"{where} rule {rid!r}: a soft {measure} rule needs {lacking}")
        extra = [k for k in ("outcome", "value", "group", "versus", "against") if fields.get(k) and k not in need]
        if extra:
            raise CardError(f"{where} rule {rid!r}: a soft {measure} rule takes {list(need)}, not {extra}")
        fields["expect"] = spec.expect or _EXPECT[measure][0]
        if fields["expect"] not in _EXPECT[measure]:
            choices = " or ".join(repr(e) for e in _EXPECT[measure])
            raise CardError(f"{where} rule {rid!r}: expect must be {choices} for a {measure} rule")
    if not spec.statement.strip():
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
        "linkability": [c for cols in card.linkability_columns or () for c in cols],
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
