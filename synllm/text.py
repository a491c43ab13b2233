"""Text for the terminal: control sequences removed, so text from a card, a CSV or a server cannot drive it.

An ANSI escape in a card's text can clear the screen, recolour or hide the lines after
it, rename the window or plant a hyperlink; a bidi override can reorder what is shown.
:func:`terminal_text` removes them and every other control character except newline
and tab. The command line passes everything it prints from such sources through it.
"""

from __future__ import annotations

import re

_SEQUENCES = re.compile(
    r"""
      \x1b\[[0-?]*[ -/]*[@-~]?                # CSI: colours, cursor moves, screen clears
    | \x9b[0-?]*[ -/]*[@-~]?                  # the same, as one 8-bit character
    | \x1b[\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?  # OSC, DCS, SOS, PM, APC strings (titles, links)
    | \x1b[ -~]?                              # any other escape, or a lone ESC
    """,
    re.VERBOSE,
)
#: Control characters (C0 but newline and tab, DEL, C1), bidi controls and line/paragraph separators.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def terminal_text(text: str) -> str:
    """``text`` without terminal control sequences or control characters (newlines and tabs kept).

    >>> terminal_text("\\x1b[2J\\x1b[31mred\\x1b[0m and \\x1b]0;title\\x07plain\\u202e")
    'red and plain'
    """
    return _CONTROLS.sub("", _SEQUENCES.sub("", text))
