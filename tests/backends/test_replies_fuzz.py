"""Server replies are untrusted: every shape gives a reply or a SynllmError naming the field, never a traceback.

The named cases are the ones a red-team pass found (an OpenAI ``message`` that is a string,
``content`` that is a list, ``usage`` that is a string). Then hypothesis feeds a few thousand
random JSON values, and random edits of well-formed replies, to the reply parsers directly
(no HTTP, so it runs fast) and to the probe's reader.
"""

from __future__ import annotations

import contextlib
import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synllm.backends import structured
from synllm.backends.http import error_message
from synllm.backends.replies import ChatReply, MalformedReply, ollama_chat, ollama_tags, openai_chat
from synllm.errors import BackendError, SynllmError

OPENAI_OK = {
    "id": "x",
    "object": "chat.completion",
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "a,b"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2},
}
OLLAMA_OK = {
    "model": "m",
    "created_at": "2024-01-01T00:00:00Z",
    "message": {"role": "assistant", "content": "a,b"},
    "done": True,
    "done_reason": "stop",
    "prompt_eval_count": 3,
    "eval_count": 2,
}


def with_value(reply: dict, path: tuple, value) -> dict:
    edited = copy.deepcopy(reply)
    target = edited
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return edited


def test_well_formed_replies_are_read():
    assert openai_chat(OPENAI_OK) == ChatReply("a,b", 3, 2, "stop", "m")
    assert ollama_chat(OLLAMA_OK) == ChatReply("a,b", 3, 2, "stop", "m")
    parts = with_value(
        OPENAI_OK, ("choices", 0, "message", "content"), [{"type": "text", "text": "a,"}, {"type": "text", "text": "b"}]
    )
    assert openai_chat(parts).text == "a,b"  # OpenAI's content parts are text too
    assert openai_chat(with_value(OPENAI_OK, ("usage",), None)).prompt_tokens is None


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        (("choices", 0, "message"), "a,b", "choices[0].message is a string, not an object"),
        (("choices", 0, "message", "content"), [1, 2], "choices[0].message.content is a list, not text"),
        (("choices", 0, "message", "content"), {"text": "a"}, "choices[0].message.content is an object, not text"),
        (("usage",), "many", "usage is a string, not an object"),
        (("usage", "prompt_tokens"), "3", "usage.prompt_tokens is a string"),
        (("usage", "completion_tokens"), -1, "usage.completion_tokens is a number (-1), not a token count"),
        (("choices", 0, "finish_reason"), 7, "choices[0].finish_reason is a number, not a string"),
        (("model",), ["m"], "model is a list, not a string"),
        (("choices",), [], "no choices[0] object"),
        (("choices",), ["x"], "no choices[0] object"),
    ],
)
def test_openai_replies_of_the_wrong_shape_name_the_field(path, value, needle):
    with pytest.raises(
        MalformedReply, match=needle.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")
    ):
        openai_chat(with_value(OPENAI_OK, path, value))
    assert issubclass(MalformedReply, BackendError)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("message",), "a,b"),
        (("message", "content"), ["a"]),
        (("prompt_eval_count",), "many"),
        (("eval_count",), -4),
        (("done_reason",), {"why": 1}),
    ],
)
def test_ollama_replies_of_the_wrong_shape_are_a_malformed_reply(path, value):
    with pytest.raises(MalformedReply, match="Ollama chat response|eval_count"):
        ollama_chat(with_value(OLLAMA_OK, path, value))


def test_ollama_tags_keep_only_entries_that_name_a_model():
    tags = {"models": [{"model": "a:1b"}, {"name": "b"}, {"model": 5}, "c", None, {"name": ["d"]}]}
    assert [e["model"] for e in ollama_tags(tags)] == ["a:1b", "b"]
    for bad in ([], "x", {"models": "x"}):
        with pytest.raises(MalformedReply):
            ollama_tags(bad)


# -- fuzz ---------------------------------------------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=16,
)
KEYS = ("choices", "message", "content", "usage", "prompt_tokens", "completion_tokens", "finish_reason", "model")
KEYS += ("done", "done_reason", "prompt_eval_count", "eval_count", "created_at", "role", "models", "name", "text")


def paths(value, prefix=()):
    """Every path into a JSON value."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from paths(child, (*prefix, i))


def readers():
    return (openai_chat, ollama_chat, ollama_tags, error_message)


def only_synllm_errors(data) -> None:
    for read in readers():
        with contextlib.suppress(SynllmError):  # any other exception fails the test
            read(data)
    json.dumps(data)  # the value itself is plain JSON


FUZZ = settings(max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(JSON | st.fixed_dictionaries({}, optional=dict.fromkeys(KEYS, JSON)))
def test_random_json_replies_give_a_reply_or_a_synllm_error(data):
    only_synllm_errors(data)


@FUZZ
@given(st.sampled_from([OPENAI_OK, OLLAMA_OK]), st.data())
def test_edited_well_formed_replies_give_a_reply_or_a_synllm_error(reply, data):
    path = data.draw(st.sampled_from([p for p in paths(reply) if p]))
    only_synllm_errors(with_value(reply, path, data.draw(JSON)))


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(structured.LEVELS), st.text(max_size=40) | JSON.map(json.dumps))
def test_probe_answers_of_any_text_are_judged_without_error(level, text):
    assert structured.probe_fits(level, text) in (True, False)


@pytest.mark.parametrize("text", ["[" * 100_000, '{"probe": ' * 50_000])
def test_a_deeply_nested_probe_answer_is_not_honoured(text):
    assert structured.probe_fits("json_schema", text) is False  # was a RecursionError
