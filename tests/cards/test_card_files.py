"""``file`` stays inside the card's folder; only regular files are read; no file content is echoed (issue 22)."""

from __future__ import annotations

import os
import signal

import pytest
import yaml

from synllm.cards import load_card
from synllm.dataset import load_dataset
from synllm.errors import CardError, DataError, SynllmError
from tests.cards.test_load import GOOD

SECRET = "password=hunter2"


def _card(folder, file: str):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(dict(GOOD, file=file)), encoding="utf-8")
    return path


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "credentials.txt"
    path.write_text(SECRET + "\nmore\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("how", ["dotdot", "absolute", "link"])
def test_a_file_outside_the_cards_folder_is_refused_without_echoing_it(tmp_path, secret, how):
    folder = tmp_path / "cards" / "mine"
    folder.mkdir(parents=True)
    if how == "link":
        (folder / "data.csv").symlink_to(secret)
    file = {"dotdot": "../../credentials.txt", "absolute": str(secret), "link": "data.csv"}[how]
    card = _card(folder, file)
    with pytest.raises(SynllmError) as info:
        load_dataset(card)
    message = str(info.value)
    assert isinstance(info.value, CardError), message
    assert "outside" in message and "SYNLLM_DATA_DIR" in message
    assert "hunter2" not in message and "password" not in message


def test_a_folder_the_user_names_may_hold_the_data(tmp_path, monkeypatch):
    data = tmp_path / "shared"
    data.mkdir()
    (data / "tiny.csv").write_text("pid,age,sick\n1,40,0\n2,50,1\n", encoding="utf-8")
    card = _card(tmp_path / "cards", "tiny.csv")
    assert load_card(card, data_dir=data).file == data / "tiny.csv"
    monkeypatch.setenv("SYNLLM_DATA_DIR", str(data))
    assert len(load_dataset(card).table) == 2
    assert load_card(_card(tmp_path / "cards", str(data / "tiny.csv"))).file == data / "tiny.csv"


def test_a_subfolder_of_the_cards_folder_is_inside(tmp_path):
    card = _card(tmp_path, "data/tiny.csv")
    assert load_card(card).file == tmp_path / "data" / "tiny.csv"
    assert load_card(_card(tmp_path, "data/../tiny.csv")).file == tmp_path / "data/../tiny.csv"


def _load_within(seconds: int, card):
    """load_dataset(card), failing the test instead of hanging (a FIFO read blocks forever)."""

    def hung(*_):
        raise TimeoutError(f"load_dataset hung for {seconds} s")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        return load_dataset(card)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("folder", "is a folder"), ("fifo", "named pipe"), ("device", "device")],
)
def test_only_regular_files_are_read_each_with_its_own_message(tmp_path, kind, expected):
    folder = tmp_path / "cards"
    folder.mkdir()
    if kind == "folder":
        (folder / "tiny.csv").mkdir()
        card, data_dir = _card(folder, "tiny.csv"), None
    elif kind == "fifo":
        os.mkfifo(folder / "tiny.csv")
        card, data_dir = _card(folder, "tiny.csv"), None
    else:
        card, data_dir = _card(folder, "/dev/zero"), "/dev"
    with pytest.raises(DataError) as info:
        _load_within(10, load_card(card, data_dir=data_dir))
    message = str(info.value)
    assert expected in message and "not found" not in message, message


@pytest.mark.parametrize("header", [SECRET, f"pid,{SECRET}"], ids=["no-column-shared", "one-of-three-shared"])
def test_a_file_mostly_unlike_the_card_is_not_echoed(tmp_path, header):
    row = ",".join(["x"] * (header.count(",") + 1))
    (tmp_path / "tiny.csv").write_text(f"{header}\n{row}\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_dataset(_card(tmp_path, "tiny.csv"))
    message = str(info.value)
    assert "hunter2" not in message and "content is not shown" in message, message


def test_a_non_utf8_file_is_named_without_its_bytes(tmp_path):
    (tmp_path / "tiny.csv").write_bytes("pid,age,sick\n1,40,0\n2,50,\xe9\n".encode("latin-1"))
    with pytest.raises(DataError) as info:
        load_dataset(_card(tmp_path, "tiny.csv"))
    message = str(info.value)
    assert "not UTF-8" in message and "line 3" in message and "xe9" not in message, message


def test_a_draft_written_away_from_its_csv_says_so_and_loads_once_the_folder_is_named(tmp_path, monkeypatch):
    from synllm.cli import main

    (tmp_path / "cards").mkdir()
    (tmp_path / "tiny.csv").write_text("pid,age,sick\n" + "".join(f"{i},{20 + i},{i % 2}\n" for i in range(30)))
    monkeypatch.chdir(tmp_path)
    assert main(["card", "draft", "tiny.csv", "-o", "cards/tiny.yaml"]) == 0
    text = (tmp_path / "cards" / "tiny.yaml").read_text(encoding="utf-8")
    assert 'file: "../tiny.csv"  # CHECK: the CSV is outside this card\'s folder' in text
    with pytest.raises(CardError, match="SYNLLM_DATA_DIR"):
        load_card(tmp_path / "cards" / "tiny.yaml")
    monkeypatch.setenv("SYNLLM_DATA_DIR", str(tmp_path))
    assert load_card(tmp_path / "cards" / "tiny.yaml").file.resolve() == tmp_path / "tiny.csv"
