"""Shared test setup: no model hub, paths to shipped specs and fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
DATA = Path(__file__).resolve().parent / "data"
SHIPPED_SPECS = sorted(SPECS.glob("*.yaml"))


@pytest.fixture
def specs_dir() -> Path:
    return SPECS


@pytest.fixture
def data_dir() -> Path:
    return DATA
