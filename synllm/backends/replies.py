"""Server replies read as untrusted data: every shape a server may send gives a reply or a named error.

:func:`openai_chat` and :func:`ollama_chat` turn a chat reply's parsed JSON into a
:class:`ChatReply`, and :func:`ollama_tags` a model listing into its entries. Anything
else (a ``message`` that is a string, ``content`` that is not text, ``usage`` that is
not an object, token counts that are not whole numbers) is a :class:`MalformedReply`
naming the field and what it held, never a raw ``TypeError`` from deep inside.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synllm.errors import BackendError


class MalformedReply(BackendError):
    """A server reply whose shape is not the API's; the message names the field."""


@dataclass(frozen=True, slots=True)
class ChatReply:
    """What synllm uses of one chat reply."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    model: str | None = None


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


def _field(data: Mapping[str, Any], key: str, where: str, types: tuple[type, ...], what: str) -> Any:
    """``data[key]`` when it is missing/null or one of ``types``; else MalformedReply naming it."""
    value = data.get(key)
    if value is None or isinstance(value, types):
        return value
    raise MalformedReply(f"the reply's {where}{key} is {_kind(value)}, not {what}")


def _count(data: Mapping[str, Any], key: str, where: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedReply(f"the reply's {where}{key} is {_kind(value)} ({str(value)[:40]}), not a token count")
    return value


def _text(content: Any, where: str) -> str:
    """A message's content: text, null, or a list of ``{"type": "text", "text": ...}`` parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str)
        for part in content
    ):
        return "".join(part["text"] for part in content)
    raise MalformedReply(f"the reply's {where} is {_kind(content)}, not text (or a list of text parts)")


def openai_chat(data: Any) -> ChatReply:
    """An OpenAI chat completion (``choices[0].message.content``, ``usage``, ``model``) as a :class:`ChatReply`."""
    if not isinstance(data, Mapping):
        raise MalformedReply(f"the reply is {_kind(data)}, not an OpenAI chat completion object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise MalformedReply("the reply was not an OpenAI chat completion (no choices[0] object)")
    choice = choices[0]
    message = choice.get("message")
    if message is not None and not isinstance(message, Mapping):
        raise MalformedReply(f"the reply's choices[0].message is {_kind(message)}, not an object")
    usage = data.get("usage")
    if usage is not None and not isinstance(usage, Mapping):
        raise MalformedReply(f"the reply's usage is {_kind(usage)}, not an object")
    usage = usage or {}
    return ChatReply(
        text=_text((message or {}).get("content"), "choices[0].message.content"),
        prompt_tokens=_count(usage, "prompt_tokens", "usage."),
        completion_tokens=_count(usage, "completion_tokens", "usage."),
        finish_reason=_field(choice, "finish_reason", "choices[0].", (str,), "a string"),
        model=_field(data, "model", "", (str,), "a string"),
    )


def ollama_chat(data: Any) -> ChatReply:
    """An Ollama ``/api/chat`` reply, read with the ``ollama`` package's own type, as a :class:`ChatReply`."""
    import ollama
    import pydantic

    try:
        response = ollama.ChatResponse.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ())) or "reply"
        raise MalformedReply(
            f"the server's reply was not an Ollama chat response ({where}: {first.get('msg', 'invalid')})"
        ) from None
    counts = {"prompt_eval_count": response.prompt_eval_count, "eval_count": response.eval_count}
    return ChatReply(
        text=response.message.content or "",
        prompt_tokens=_count(counts, "prompt_eval_count", ""),
        completion_tokens=_count(counts, "eval_count", ""),
        finish_reason=response.done_reason,
        model=response.model,
    )


def ollama_tags(data: Any) -> list[dict[str, Any]]:
    """The entries of an Ollama ``/api/tags`` reply that name a model (``model`` or ``name`` text)."""
    if not isinstance(data, Mapping):
        raise MalformedReply(f"the /api/tags reply is {_kind(data)}, not an object")
    entries = data.get("models")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise MalformedReply(f"the /api/tags reply's models is {_kind(entries)}, not a list")
    named = []
    for entry in entries:
        if isinstance(entry, Mapping):
            tag = entry.get("model") or entry.get("name")
            if isinstance(tag, str) and tag:
                named.append({**entry, "model": tag})
    return named


def error_message(body: Any, text: str = "") -> str:
    """The human message in an error body: OpenAI's ``{"error": {"message"}}``, Ollama's ``{"error"}``, or text."""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and error.get("message"):
            return str(error["message"])
        for key in ("error", "message", "detail"):
            if body.get(key):
                return str(body[key])
    return (text or str(body))[:500]
