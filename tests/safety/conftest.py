from __future__ import annotations

from pathlib import Path

import pytest

from chatcanvas.config import Settings, load_settings


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Plain settings on an empty data folder (no .env from the repo)."""
    monkeypatch.chdir(tmp_path)
    return load_settings(data_dir=tmp_path / "data")
