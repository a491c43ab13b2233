"""Card YAML is read with limits (issue 22): aliases, duplicate keys, size and nesting are refused with a CardError."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import yaml

from synllm import yamlsafe
from synllm.cards import load_card
from synllm.errors import CardError
from tests.cards.test_load import GOOD


def alias_bomb_card() -> str:
    """A 'billion laughs' card: nine levels of nine aliases in a text field (9**9 'lol's, gigabytes as text)."""
    levels = ['&a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        levels.append(f"&{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    body = yaml.safe_dump({k: v for k, v in GOOD.items() if k != "name"}, sort_keys=False)
    return "name: bomb\ndescription: [" + ", ".join(levels) + "]\n" + body


def test_the_alias_bomb_is_a_small_file():
    assert len(alias_bomb_card().encode()) < 5000


def test_an_alias_bomb_card_is_refused_in_under_a_second_and_100_mb(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb_card(), encoding="utf-8")
    script = textwrap.dedent(
        f"""
        import json, resource, time, tracemalloc
        resource.setrlimit(resource.RLIMIT_DATA, (1_500_000_000, 1_500_000_000))  # the old code dies here, not the box
        from synllm.cards import load_card
        from synllm.errors import CardError
        tracemalloc.start()
        start = time.perf_counter()
        try:
            load_card({str(path)!r})
            outcome = "loaded"
        except CardError as exc:
            outcome = "CardError: " + str(exc)
        except MemoryError:
            outcome = "MemoryError"
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        print(json.dumps({{"outcome": outcome, "seconds": seconds, "peak": peak}}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, cwd=".")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["outcome"].startswith("CardError"), result
    assert "alias" in result["outcome"] and "line 2" in result["outcome"], result
    assert result["seconds"] < 1.0, result
    assert result["peak"] < 100 * 2**20, result


def test_a_duplicate_key_is_refused_naming_the_key_and_both_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    text = yaml.safe_dump(GOOD, sort_keys=False).replace("name: tiny\n", "name: tiny\ntitle: One\n", 1)
    path.write_text(text + "title: Two\n", encoding="utf-8")
    with pytest.raises(CardError) as info:
        load_card(path)
    message = str(info.value)
    last = text.count("\n") + 1
    assert "dup.yaml" in message and "'title'" in message and "twice" in message
    assert f"line {last}" in message and "first on line 2" in message


def test_a_duplicate_key_inside_a_column_is_refused(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(
        "name: t\nfile: t.csv\nroles: {target: a}\ncolumns:\n"
        "  - {name: a, kind: binary, description: x, kind: float}\n",
        encoding="utf-8",
    )
    with pytest.raises(CardError, match=r"line 5: the key 'kind' appears twice"):
        load_card(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: t\ndescription: " + "x" * (yamlsafe.MAX_SCALAR_CHARS + 1) + "\n", "characters (at most"),
        ("name: t\ndescription: |\n" + "  x\n" * (yamlsafe.MAX_DOCUMENT_CHARS // 4 + 1), "allowed; shorten it"),
        ("name: t\ndescription: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than"),
        ("name: t\nx: [" + "1, " * (yamlsafe.MAX_NODES + 1) + "]\n", "values; split the file"),
    ],
    ids=["long-scalar", "long-document", "deep-nesting", "too-many-values"],
)
def test_oversized_or_deep_yaml_is_refused(tmp_path, text, expected):
    path = tmp_path / "big.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CardError, match="big.yaml") as info:
        load_card(path)
    assert expected in str(info.value)


def test_a_latin1_card_is_a_card_error(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes(yaml.safe_dump(dict(GOOD, title="Patients à Genève"), allow_unicode=True).encode("latin-1"))
    with pytest.raises(CardError, match=r"latin.yaml.*not UTF-8.*iconv"):
        load_card(path)


def test_safe_load_still_reads_plain_yaml_and_anchors_without_aliases():
    assert yamlsafe.safe_load("a: &x 1\nb: [1, 2]\nc: {d: e}\n") == {"a": 1, "b": [1, 2], "c": {"d": "e"}}
    with pytest.raises(yaml.YAMLError):
        yamlsafe.safe_load("a: [unclosed\n")


def test_inline_duplicates_and_merge_keys_are_handled():
    with pytest.raises(yamlsafe.YamlLimitError, match="'a' appears twice"):
        yamlsafe.safe_load("{a: 1, a: 2}")
    assert yamlsafe.safe_load("x: {<<: {a: 1}, b: 2}") == {"x": {"a": 1, "b": 2}}


def test_other_user_yaml_uses_the_same_limits(tmp_path):
    from synllm.backends.endpoints import load_endpoints
    from synllm.errors import EndpointConfigError

    path = tmp_path / "endpoints.yaml"
    path.write_text("a: &x [1, 2]\nb: *x\n", encoding="utf-8")
    with pytest.raises(EndpointConfigError, match="alias"):
        load_endpoints(path)
