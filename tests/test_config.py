"""Settings: every variable documented, bad values stop start-up with one clear line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from chatcanvas.config import Settings, env_name, load_settings
from chatcanvas.errors import ConfigError

ROOT = Path(__file__).parents[1]


def test_env_example_documents_every_setting() -> None:
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    expected = {env_name(f) for f in Settings.model_fields}
    assert expected - documented == set(), "undocumented settings"
    assert documented - expected == set(), "documented settings that do not exist"


@pytest.mark.parametrize(
    ("var", "value", "names"),
    [
        ("CHATCANVAS_DEFAULT_STEPS", "-3", ">= 1"),
        ("CHATCANVAS_BACKEND", "midjourney", "local, openai"),
        ("CHATCANVAS_DEFAULT_SIZE", "500x500", "multiples of 8"),
        ("CHATCANVAS_MAX_COUNT", "lots", "whole number"),
        ("CHATCANVAS_API_KEYS", "d41d8cd98f00b204e9800998ecf8427e,shop1", "1 key(s) shorter than 16 characters"),
    ],
)
def test_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, names: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    msg = str(err.value)
    assert "\n" not in msg and var in msg and names in msg


def test_cli_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {"CHATCANVAS_DEFAULT_STEPS": "-3", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    p = subprocess.run(
        [sys.executable, "-m", "chatcanvas.cli", "generate", "x"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "CHATCANVAS_DEFAULT_STEPS" in lines[0] and "Traceback" not in p.stderr


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CHATCANVAS_MAX_COUNT=7\nOPENAI_BASE_URL=http://127.0.0.1:9/v1\n")
    s = load_settings()
    assert s.max_count == 7 and s.openai_base_url == "http://127.0.0.1:9/v1"


def test_demo_model_is_the_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.using_demo_model and s.model_ref.endswith("demo/model")


def test_settings_by_part_keep_the_flat_variable_names(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from chatcanvas.config import load_settings

    monkeypatch.setenv("CHATCANVAS_DISCORD_COOLDOWN_S", "2.5")
    monkeypatch.setenv("CHATCANVAS_SLACK_CHANNELS", "C1, C2")
    monkeypatch.setenv("CHATCANVAS_WEB_BACKENDS", "local,openai")
    monkeypatch.setenv("CHATCANVAS_OPENAI_IMAGE_MODEL", "gpt-image-1")
    s = load_settings()
    assert s.discord.cooldown_s == 2.5 and s.slack.channels == ["C1", "C2"]
    assert s.web.backends == ["local", "openai"] and s.openai_options.image_model == "gpt-image-1"
    import pydantic
    import pytest

    with pytest.raises(pydantic.ValidationError):  # a part takes only its own options
        type(s.discord)(**s.discord.model_dump(), colour="red")


def test_an_unknown_backend_stops_start_up_listing_the_registered_ones(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from chatcanvas.config import load_settings
    from chatcanvas.errors import ConfigError

    monkeypatch.setenv("CHATCANVAS_BACKEND", "dalle9000")
    with pytest.raises(ConfigError) as err:
        load_settings()
    text = str(err.value)
    assert "CHATCANVAS_BACKEND" in text and "dalle9000" in text and "local" in text and "openai" in text
    assert "\n" not in text
