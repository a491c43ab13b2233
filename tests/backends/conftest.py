"""Fixtures shared by the backend tests."""

from tests.fake_openai import fake_openai

__all__ = ["fake_openai"]
