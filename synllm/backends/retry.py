"""Retry pieces shared by the HTTP backends (Ollama, OpenAI-compatible)."""

from __future__ import annotations

from synllm.errors import BackendError


class Retryable(Exception):
    """One failed attempt worth retrying; ``unreachable`` when no connection was made."""

    def __init__(self, reason: str, *, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable


def check_retry_settings(owner: str, retries: int, timeout: float, backoff_s: float) -> None:
    """Raise a BackendError naming ``owner`` when retry settings cannot work."""
    if retries < 0 or timeout <= 0 or backoff_s < 0:
        raise BackendError(
            f"{owner} needs retries >= 0, timeout > 0 and backoff_s >= 0; "
            f"got retries={retries}, timeout={timeout}, backoff_s={backoff_s}"
        )


def backoff_delay(attempt: int, backoff_s: float, max_backoff_s: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): exponential, capped."""
    return min(backoff_s * 2 ** (attempt - 1), max_backoff_s)
