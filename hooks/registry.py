"""Hooks from configuration and from installed packages (entry points).

A hook factory is ``module:attribute``: a class or function called with the configuration
(or with nothing, if it takes no argument) that returns an observer (``on_event``) or an
interceptor (``before`` / ``after`` / ``finish_turn``). Installed packages register factories
under the entry-point group ``voice_assistant_sim.hooks``, so a third party adds a hook without
touching this code:

    [project.entry-points."voice_assistant_sim.hooks"]
    my_metrics = "my_package.hooks:MetricsObserver"
"""

from __future__ import annotations

import importlib
import inspect
import logging
from importlib.metadata import entry_points
from typing import Any

from core.errors import ConfigError
from hooks.bus import HookBus, Interceptor

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "voice_assistant_sim.hooks"


def _load(ref: str) -> Any:
    module_name, sep, attr = ref.strip().partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"hook {ref!r}: expected 'package.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"hook {ref!r}: cannot import {module_name} ({err})") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"hook {ref!r}: {module_name} has no {attr}") from None


def _instantiate(factory: Any, config: Any, ref: str) -> Any:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    return factory(config) if params else factory()


def install(bus: HookBus, config: Any) -> list[str]:
    """Add the hooks the configuration and the installed packages name; returns their names."""
    refs = [r for r in config["hooks.observers"].split(",") if r.strip()]
    refs += [r for r in config["hooks.interceptors"].split(",") if r.strip()]
    found = [(r.strip(), _load(r)) for r in refs]
    if config["hooks.entry_points"]:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                found.append((f"{ep.name} ({ep.value})", ep.load()))
            except Exception as err:  # a broken plugin must not stop the assistant
                log.warning("hook entry point %s failed to load: %s", ep.name, err)
    names = []
    for name, factory in found:
        hook = _instantiate(factory, config, name)
        if (
            isinstance(hook, Interceptor)
            or any(callable(getattr(hook, m, None)) for m in ("before", "after", "finish_turn"))
            and not callable(getattr(hook, "on_event", None))
        ):
            bus.add_interceptor(hook)
        elif callable(getattr(hook, "on_event", None)):
            bus.add_observer(hook)
        else:
            raise ConfigError(
                f"hook {name}: {type(hook).__name__} is neither an observer (on_event) nor an interceptor"
            )
        names.append(name)
        log.info("hook installed: %s", name)
    return names
