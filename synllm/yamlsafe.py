"""YAML from users, read with limits: no aliases, no duplicate keys, bounded size, depth and node count.

PyYAML's ``safe_load`` runs no code, but a 4.7 KB card of nested aliases (a "billion
laughs") expands to gigabytes, a duplicated key silently keeps the last value, and a
deeply nested document overflows the stack. :func:`safe_load` refuses each of these
before anything large is built, raising :class:`YamlLimitError` (a ``yaml.YAMLError``,
so every caller's ``except yaml.YAMLError`` turns it into that caller's own error) that
names the line and the fix.
"""

from __future__ import annotations

from typing import Any

import yaml

#: Largest document read, in characters (a shipped card is about 10 KB).
MAX_DOCUMENT_CHARS = 1_000_000
#: Longest single scalar (a description, an expression), in characters.
MAX_SCALAR_CHARS = 100_000
#: Most nodes (scalars, lists, mappings) in one document.
MAX_NODES = 100_000
#: Deepest nesting of lists and mappings.
MAX_DEPTH = 64


class YamlLimitError(yaml.YAMLError):
    """A YAML document uses a refused feature (an alias, a duplicate key) or exceeds a size limit."""


class LimitedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses aliases and duplicate keys and bounds nodes, depth and scalar size."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._nodes = 0
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise YamlLimitError(
                f"line {event.start_mark.line + 1}: the alias '*{event.anchor}' is not allowed (aliases can expand "
                "a small file into gigabytes); write the value out in full"
            )
        event = self.peek_event()
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise YamlLimitError(f"line {event.start_mark.line + 1}: more than {MAX_NODES:,} values; split the file")
        if isinstance(event, yaml.ScalarEvent) and len(event.value) > MAX_SCALAR_CHARS:
            raise YamlLimitError(
                f"line {event.start_mark.line + 1}: a value of {len(event.value):,} characters (at most "
                f"{MAX_SCALAR_CHARS:,}); shorten it"
            )
        nested = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
        if nested:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise YamlLimitError(
                    f"line {event.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep; flatten it"
                )
        try:
            return super().compose_node(parent, index)
        finally:
            if nested:
                self._depth -= 1

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # '<<' merges; PyYAML flattens it below
                    continue
                line = key_node.start_mark.line + 1
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                    seen.setdefault(key, line)
                except TypeError:
                    raise YamlLimitError(f"line {line}: a key must be text or a number") from None
                if first is not None:
                    raise YamlLimitError(
                        f"line {line}: the key {_shown(key)} appears twice in one mapping (first on line {first}); "
                        "keep one of them"
                    )
        return super().construct_mapping(node, deep=deep)


def _shown(key: Any) -> str:
    text = repr(key)
    return text if len(text) <= 60 else text[:57] + "..."


def safe_load(text: str | bytes) -> Any:
    """Parse one YAML document with the limits above (``yaml.safe_load`` semantics otherwise).

    Raises :class:`YamlLimitError` for an alias, a duplicate key or a size limit, and
    ``yaml.YAMLError`` for malformed YAML.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise YamlLimitError(
                f"not UTF-8 (byte {exc.start}); re-save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8`"
            ) from None
    if len(text) > MAX_DOCUMENT_CHARS:
        raise YamlLimitError(f"{len(text):,} characters, more than the {MAX_DOCUMENT_CHARS:,} allowed; shorten it")
    loader = LimitedLoader(text)
    try:
        return loader.get_single_data()
    except RecursionError:
        raise YamlLimitError(f"nested too deeply (at most {MAX_DEPTH} levels); flatten it") from None
    finally:
        loader.dispose()
