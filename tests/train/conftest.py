"""Training tests use the tiny model and toy data from tests/conftest.py."""

from tests.conftest import COMPLY_BAD, PROMPTS, REFUSE

__all__ = ["COMPLY_BAD", "PROMPTS", "REFUSE"]
