"""Card text never drives the terminal (issue 22): `synllm card check` strips control sequences from what it prints."""

from __future__ import annotations

import yaml

from synllm.cli import main
from synllm.text import terminal_text
from tests.cards.test_load import GOOD

ESCAPES = "\x1b[2J\x1b[31m\x1b]0;pwned\x07\x1b]8;;evil\x1b\\\x9b1m\u202e\r"


def test_terminal_text_strips_sequences_and_controls_but_keeps_lines():
    assert terminal_text(f"a{ESCAPES}b\n\tc\x00\x7f\x85\u2028d") == "ab\n\tcd"
    assert terminal_text("plain: ü, ≥, 日本") == "plain: ü, ≥, 日本"
    assert terminal_text("\x1b") == "" and terminal_text("\x1b[") == ""


def _card(folder):
    folder.mkdir()
    (folder / "tiny.csv").write_text("pid,age,sick\n" + "".join(f"{i},{20 + i},{i % 2}\n" for i in range(30)))
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(GOOD), encoding="utf-8")
    return path


def test_card_check_output_holds_no_control_sequence(tmp_path, capsys):
    path = _card(tmp_path / f"cards{ESCAPES}")
    assert main(["card", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "card check passed" in out and "cards" in out
    assert not any(ch in out for ch in "\x1b\x9b\x07\u202e\r"), repr(out)


def test_error_messages_hold_no_control_sequence(tmp_path, capsys):
    path = _card(tmp_path / f"cards{ESCAPES}")
    path.write_text("name: [unclosed\n", encoding="utf-8")
    assert main(["card", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not valid YAML" in err
    assert not any(ch in err for ch in "\x1b\x9b\x07\u202e\r"), repr(err)
