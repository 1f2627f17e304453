"""Domain APIs executed against the simulated world.

Most APIs are declared in the spec (no code): ``select``/``set``/``get`` over world
collections, ``list_add``/``list_read``/``list_remove``, ``create`` and ``lookup``. APIs that
compute (weather, timers, media) are Python functions registered by name with
:func:`python_api` and referenced from the spec as ``python: home.get_weather``.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from core.records import frozen_map
from core.domain import ApiSpec, Domain
from core.world import World

log = logging.getLogger(__name__)

_REF = re.compile(r"\{([a-zA-Z_][\w.]*)\}")


@dataclass(frozen=True)
class ApiResult:
    status: str                      # ok | unchanged | not_found | empty | failed | …
    data: Mapping = field(default_factory=frozen_map)
    kind: str = "action"             # action: changed the world; answer: read it


@dataclass(frozen=True)
class ApiCall:
    name: str
    args: Mapping                    # constants from the intent + slot ids/values
    names: Mapping                   # slot → display name of its entity
    world: World
    ctx: Any                         # TurnContext: device, user, clock
    domain: Domain


PythonApi = Callable[[ApiCall], ApiResult]
_PYTHON_APIS: dict[str, PythonApi] = {}


def python_api(name: str) -> Callable[[PythonApi], PythonApi]:
    def register(fn: PythonApi) -> PythonApi:
        if name in _PYTHON_APIS and _PYTHON_APIS[name] is not fn:
            raise ValueError(f"python API {name!r} is registered twice")
        _PYTHON_APIS[name] = fn
        return fn
    return register


def _ensure_builtin_apis() -> None:
    import core.home_apis  # noqa: F401  (registers home.* APIs)


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


class ApiRunner:
    def __init__(self, domain: Domain):
        self.domain = domain
        _ensure_builtin_apis()
        for api in domain.apis.values():
            if api.kind == "python" and api.config["python"] not in _PYTHON_APIS:
                raise ValueError(f"{domain.source}: apis.{api.name}: no python API {api.config['python']!r}")

    def call(self, api_name: str, args: Mapping, names: Mapping, world: World, ctx) -> ApiResult:
        spec = self.domain.apis[api_name]
        call = ApiCall(api_name, frozen_map(args), frozen_map(names), world, ctx, self.domain)
        if spec.kind == "python":
            return _PYTHON_APIS[spec.config["python"]](call)
        return getattr(self, f"_{spec.kind}")(spec, call)

    # declarative kinds ----------------------------------------------------------------
    def _state(self, spec: ApiSpec, call: ApiCall) -> ApiResult:
        cfg = spec.config
        sel = cfg.get("select") or {}
        where = {k: substitute(v, call.args) for k, v in (sel.get("where") or {}).items()}
        targets = call.world.select(sel.get("in", ""), where)
        required = list(cfg.get("require") or [])
        targets = [(i, o) for i, o in targets if all(r in o for r in required)]
        if not targets:
            return ApiResult("not_found", frozen_map({"where": where}), "answer" if "set" not in cfg else "action")
        updates = {k: substitute(v, call.args) for k, v in (cfg.get("set") or {}).items()}
        status = "ok"
        if updates:
            if all(all(o.get(k) == v for k, v in updates.items()) for _i, o in targets):
                status = "unchanged"
            for _i, o in targets:
                o.update(updates)
        data: dict[str, Any] = {"target": " and ".join(display_name(i, o) for i, o in targets),
                                "ids": [i for i, _o in targets]}
        for key in cfg.get("get") or []:
            data[key] = targets[0][1].get(key)
        return ApiResult(status, frozen_map(data), "action" if updates else "answer")

    def _list_add(self, spec: ApiSpec, call: ApiCall) -> ApiResult:
        cfg = spec.config["list_add"]
        value = substitute(cfg["value"], call.names | {k: v for k, v in call.args.items() if k not in call.names})
        items = list(call.world.get(cfg["list"], []) or [])
        if value in items:
            return ApiResult("unchanged", frozen_map({"item": value, "items": items}))
        items.append(value)
        call.world.set(cfg["list"], items)
        return ApiResult("ok", frozen_map({"item": value, "items": items}))

    def _list_read(self, spec: ApiSpec, call: ApiCall) -> ApiResult:
        items = list(call.world.get(spec.config["list_read"]["list"], []) or [])
        return ApiResult("ok" if items else "empty", frozen_map({"items": items, "count": len(items)}), "answer")

    def _list_remove(self, spec: ApiSpec, call: ApiCall) -> ApiResult:
        cfg = spec.config["list_remove"]
        value = substitute(cfg["value"], call.names | {k: v for k, v in call.args.items() if k not in call.names})
        items = list(call.world.get(cfg["list"], []) or [])
        if value not in items:
            return ApiResult("not_found", frozen_map({"item": value, "items": items}))
        items.remove(value)
        call.world.set(cfg["list"], items)
        return ApiResult("ok", frozen_map({"item": value, "items": items}))

    def _create(self, spec: ApiSpec, call: ApiCall) -> ApiResult:
        cfg = spec.config["create"]
        records = list(call.world.get(cfg["in"], []) or [])
        record = {k: substitute(v, call.args) for k, v in (cfg.get("record") or {}).items()}
        record["id"] = f"{cfg.get('prefix', cfg['in'].split('.')[-1][:3])}-{len(records) + 1}"
        records.append(record)
        call.world.set(cfg["in"], records)
        return ApiResult("ok", frozen_map(record))

    def _lookup(self, spec: ApiSpec, call: ApiCall) -> ApiResult:
        cfg = spec.config["lookup"]
        key = substitute(cfg["key"], call.args)
        row = (cfg.get("table") or {}).get(str(key))
        if row is None:
            return ApiResult("not_found", frozen_map({"key": key}), "answer")
        return ApiResult("ok", frozen_map(dict(row)), "answer")
