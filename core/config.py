"""Configuration: packaged defaults, then a config file, then command-line overrides.

Every value remembers where it came from, so ``assistant config`` can say so. Keys are
``section.name``; types follow the defaults (a value of the wrong type is a one-line error).
"""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from core.errors import ConfigError, InputError

log = logging.getLogger(__name__)

DEFAULTS_FILE = Path(__file__).with_name("defaults.toml")
USER_FILE_NAMES = ("assistant.toml",)
ENV_CONFIG = "ASSISTANT_CONFIG"


@dataclass(frozen=True)
class Setting:
    value: Any
    source: str


def _flatten(data: Mapping, origin: Path) -> dict[str, Any]:
    out = {}
    for section, body in data.items():
        if not isinstance(body, Mapping):
            raise InputError(origin, "top-level keys must be [sections]", field=section)
        for key, value in body.items():
            out[f"{section}.{key}"] = value
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return _flatten(tomllib.loads(path.read_text(encoding="utf-8")), path)
    except FileNotFoundError:
        raise InputError(path, "no such config file") from None
    except tomllib.TOMLDecodeError as err:
        raise InputError(path, f"invalid TOML ({err})") from None


def coerce(key: str, raw: Any, default: Any, source: str) -> Any:
    """Convert ``raw`` to the type of ``default`` (strings come from the command line)."""
    target = type(default)
    if isinstance(raw, target) and not (target is int and isinstance(raw, bool)):
        return raw
    if target is float and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, str):
        text = raw.strip()
        try:
            if target is bool:
                low = text.lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            if target is int:
                return int(text)
            if target is float:
                return float(text)
            if target is str:
                return text
        except ValueError:
            pass
    raise ConfigError(f"{key}: expected {target.__name__}, got {raw!r} (from {source})")


class Config:
    def __init__(self, settings: Mapping[str, Setting]):
        self._settings = MappingProxyType(dict(settings))

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        overrides: Mapping[str, Any] | None = None,
        override_source: str = "command line",
    ) -> "Config":
        defaults = _read_toml(DEFAULTS_FILE)
        settings = {k: Setting(v, "default") for k, v in defaults.items()}
        file = cls._find_file(path)
        if file is not None:
            for key, raw in _read_toml(file).items():
                if key not in settings:
                    raise InputError(file, f"unknown setting (known: {', '.join(sorted(settings))})", field=key)
                settings[key] = Setting(coerce(key, raw, defaults[key], str(file)), str(file))
        for key, raw in (overrides or {}).items():
            if key not in settings:
                raise ConfigError(f"unknown setting {key!r} (see `assistant config`)")
            settings[key] = Setting(coerce(key, raw, defaults[key], override_source), override_source)
        return cls(settings)

    @staticmethod
    def _find_file(path: str | Path | None) -> Path | None:
        if path:
            return Path(path)
        env = os.environ.get(ENV_CONFIG)
        if env:
            return Path(env)
        for name in USER_FILE_NAMES:
            candidate = Path.cwd() / name
            if candidate.is_file():
                return candidate
        return None

    def __getitem__(self, key: str) -> Any:
        try:
            return self._settings[key].value
        except KeyError:
            raise ConfigError(f"unknown setting {key!r}") from None

    def section(self, name: str) -> dict[str, Any]:
        prefix = name + "."
        return {k[len(prefix) :]: s.value for k, s in self._settings.items() if k.startswith(prefix)}

    def items(self) -> Iterable[tuple[str, Setting]]:
        return self._settings.items()

    def with_overrides(self, overrides: Mapping[str, Any], source: str = "override") -> "Config":
        defaults = {k: s.value for k, s in self._settings.items()}
        settings = dict(self._settings)
        for key, raw in overrides.items():
            if key not in settings:
                raise ConfigError(f"unknown setting {key!r}")
            settings[key] = Setting(coerce(key, raw, defaults[key], source), source)
        return Config(settings)

    def to_dict(self) -> dict[str, Any]:
        return {k: s.value for k, s in self._settings.items()}


def default_keys() -> dict[str, Any]:
    return _read_toml(DEFAULTS_FILE)


def cache_dir(config: Config) -> Path:
    configured = config["nlu.cache_dir"]
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "voice-assistant-sim"
