"""Defaults, then a config file, then the command line; each value knows its source."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.config import Config
from core.errors import ConfigError, InputError


def test_defaults_then_file_then_flags(tmp_path):
    cfg_file = tmp_path / "assistant.toml"
    cfg_file.write_text('[wake]\nthreshold = 0.6\nword = "hey_jarvis"\n[asr]\nbeam_size = 2\n')
    cfg = Config.load(cfg_file, {"wake.threshold": "0.7"})
    settings = dict(cfg.items())
    assert cfg["wake.threshold"] == 0.7 and settings["wake.threshold"].source == "command line"
    assert cfg["wake.word"] == "hey_jarvis" and settings["wake.word"].source == str(cfg_file)
    assert cfg["asr.beam_size"] == 2
    assert settings["asr.model"].source == "default"


def test_bad_values_and_keys_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="wake.threshold: expected float"):
        Config.load(None, {"wake.threshold": "loud"})
    with pytest.raises(ConfigError, match="unknown setting 'wake.colour'"):
        Config.load(None, {"wake.colour": "red"})
    bad = tmp_path / "bad.toml"
    bad.write_text("[asr]\nmodel = \n")
    with pytest.raises(InputError, match="invalid TOML"):
        Config.load(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[asr]\nmodle = 'x'\n")
    with pytest.raises(InputError, match="asr.modle"):
        Config.load(unknown)


def test_cli_prints_effective_config_with_sources():
    out = subprocess.run(
        [sys.executable, "-m", "assistant", "config", "--json", "--wake-threshold", "0.65", "--set", "asr.beam_size=3"],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(out.stdout)
    assert data["wake.threshold"] == {"value": 0.65, "source": "command line"}
    assert data["asr.beam_size"]["value"] == 3
    assert data["tts.backend"]["source"] == "default"


def test_cli_usage_error_exits_2_with_one_line():
    out = subprocess.run(
        [sys.executable, "-m", "assistant", "config", "--wake-threshold", "x"], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "wake.threshold" in out.stderr
