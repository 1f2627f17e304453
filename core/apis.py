"""Domain APIs executed against the simulated world.

Most APIs are declared in the spec (no code): ``select``/``set``/``get`` over world
collections, ``list_add``/``list_read``/``list_remove``, ``create`` and ``lookup``. APIs that
compute (weather, timers, media) are Python functions registered by name with
:func:`core.api_calls.python_api` and referenced from the spec as ``python: home.get_weather``.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import core.home_apis  # noqa: F401  (registers the home.* Python APIs)
from core.api_calls import PYTHON_APIS, ApiCall, ApiResult, display_name, substitute
from core.domain import ApiSpec, Domain
from core.records import frozen_map
from core.world import World

log = logging.getLogger(__name__)


class ApiRunner:
    def __init__(self, domain: Domain):
        self.domain = domain
        for api in domain.apis.values():
            if api.kind == "python" and api.config["python"] not in PYTHON_APIS:
                raise ValueError(f"{domain.source}: apis.{api.name}: no python API {api.config['python']!r}")

    def call(self, api_name: str, args: Mapping, names: Mapping, world: World, ctx) -> ApiResult:
        spec = self.domain.apis[api_name]
        call = ApiCall(api_name, frozen_map(args), frozen_map(names), world, ctx, self.domain)
        if spec.kind == "python":
            return PYTHON_APIS[spec.config["python"]](call)
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
        data: dict[str, Any] = {
            "target": " and ".join(display_name(i, o) for i, o in targets),
            "ids": [i for i, _o in targets],
        }
        for key in cfg.get("get") or []:
            data[key] = targets[0][1].get(key)
        return ApiResult(status, frozen_map(data), "action" if updates else "answer")

    def _list_add(self, spec: ApiSpec, call: ApiCall) -> ApiResult:
        cfg = spec.config["list_add"]
        value = substitute(cfg["value"], {**call.names, **{k: v for k, v in call.args.items() if k not in call.names}})
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
        value = substitute(cfg["value"], {**call.names, **{k: v for k, v in call.args.items() if k not in call.names}})
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
