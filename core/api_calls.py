"""A call of a domain API and its result, and the registry of APIs written in Python.

Python APIs (weather, timers, media: core/home_apis.py) register here by name with
:func:`python_api`; the spec refers to them as ``python: home.get_weather``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from core.domain import Domain
from core.records import frozen_map
from core.world import World

log = logging.getLogger(__name__)

_REF = re.compile(r"\{([a-zA-Z_][\w.]*)\}")


@dataclass(frozen=True)
class ApiResult:
    status: str  # ok | unchanged | not_found | empty | failed | …
    data: Mapping = field(default_factory=frozen_map)
    kind: str = "action"  # action: changed the world; answer: read it


@dataclass(frozen=True)
class ApiCall:
    name: str
    args: Mapping  # constants from the intent + slot ids/values
    names: Mapping  # slot → display name of its entity
    world: World
    ctx: Any  # TurnContext: device, user, clock
    domain: Domain


PythonApi = Callable[[ApiCall], ApiResult]
PYTHON_APIS: dict[str, PythonApi] = {}


def python_api(name: str) -> Callable[[PythonApi], PythonApi]:
    def register(fn: PythonApi) -> PythonApi:
        if name in PYTHON_APIS and PYTHON_APIS[name] is not fn:
            raise ValueError(f"python API {name!r} is registered twice")
        PYTHON_APIS[name] = fn
        return fn

    return register


def substitute(template: Any, args: Mapping) -> Any:
    """``"{x}"`` → the raw value of x; ``"a {x} b"`` → text; other values pass through."""
    if not isinstance(template, str):
        return template

    def lookup(path: str) -> Any:
        node: Any = args
        for part in path.split("."):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            else:
                return None
        return node

    whole = _REF.fullmatch(template)
    if whole:
        return lookup(whole.group(1))
    return _REF.sub(lambda m: "" if lookup(m.group(1)) is None else str(lookup(m.group(1))), template)


def display_name(obj_id: str, obj: Mapping) -> str:
    return str(obj.get("name") or obj_id.replace("_", " "))
