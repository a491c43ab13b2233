"""Text for Markdown: untrusted text (from a card, a CSV, a model or a server) shown as text, never run.

Narratives are Markdown, and nbconvert renders Markdown to HTML passing raw HTML and
``javascript:`` links through; so a card description or a server's error message goes
into Markdown through :func:`md_text` (markup characters escaped, HTML as entities, one
line) or :func:`md_code` (an inline code span, which Markdown escapes). Tables are
escaped by :func:`synllm.report.display.table`; the index page uses :func:`html.escape`.

>>> md_text("<b>bold</b>")
'&lt;b&gt;bold&lt;/b&gt;'
>>> md_plain(md_text("a_b <c>"))
'a_b <c>'
>>> print(prompt_name("p4"), prompt_name("p_5"))
P4 (rules) p\\_5
"""

from __future__ import annotations

import html
import re
from typing import Any

#: Characters that start Markdown markup (emphasis, code, links, images, headings, tables, HTML entities aside).
_MARKUP = re.compile(r"([\\`*_{}\[\]()#+!|~])")
_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+!|~])")
#: How the reports name the four prompt types of the study.
PROMPT_NAMES = {"p1": "P1 (examples)", "p2": "P2 (definitions)", "p3": "P3 (statistics)", "p4": "P4 (rules)"}


def md_text(value: Any) -> str:
    """``value`` as inert text inside Markdown: on one line, markup characters escaped, HTML as entities."""
    text = " ".join(str(value).split())
    return html.escape(_MARKUP.sub(r"\\\1", text), quote=False)


def md_code(value: Any) -> str:
    """``value`` as an inline code span on one line (a backtick inside becomes a quote, so it cannot end the span)."""
    return "`" + " ".join(str(value).replace("`", "'").split()) + "`"


def md_plain(text: str) -> str:
    """Plain text from :func:`md_text` output (for places that show it outside Markdown, escaped again there)."""
    return html.unescape(_ESCAPED.sub(r"\1", text))


def prompt_name(prompt_type: str) -> str:
    """How the reports name a prompt type: 'P4 (rules)', or the escaped text of a type they do not know."""
    return PROMPT_NAMES.get(prompt_type) or md_text(prompt_type)
