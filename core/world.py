"""The simulated world a session acts on: device states, timers, lists, the clock.

The world is the one mutable thing in a session — it is the environment, not a stage record.
Its state is plain JSON data so that it can be snapshotted (for counterfactual replays),
compared and written into traces. APIs change it; stages only read it through the context.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from typing import Any, Iterator, Mapping

log = logging.getLogger(__name__)


_SCALARS = (str, int, float, bool, type(None))
_SCALAR_TYPES = frozenset(_SCALARS)


def copy_tree(value: Any) -> Any:
    """A deep copy of plain JSON data (mappings, lists, scalars); anything else goes through
    ``copy.deepcopy``. Counterfactual replays copy the world a few times a turn, and this is
    several times faster than ``deepcopy``'s general walk."""
    # Plain dicts, lists and scalars by exact type first: isinstance against the Mapping ABC
    # was most of the time of a copy.
    kind = type(value)
    if kind is dict:
        return {k: v if type(v) in _SCALAR_TYPES else copy_tree(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _SCALAR_TYPES else copy_tree(v) for v in value]
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Mapping):
        return {k: copy_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_tree(v) for v in value]
    return copy.deepcopy(value)


def deep_merge(base: Mapping, override: Mapping) -> dict:
    """A new dict: ``override`` merged into ``base`` recursively (mappings merge, rest replaces)."""
    out = copy_tree(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy_tree(value)
    return out


class World:
    def __init__(self, state: Mapping, clock: dt.datetime):
        self.state: dict = copy_tree(state)
        self.clock = clock

    # time -------------------------------------------------------------------------
    def advance_to(self, when: dt.datetime) -> None:
        """Move the clock forward (never back); timers that ran out are removed."""
        if when > self.clock:
            self.clock = when
        self.state["timers"] = [
            t for t in self.state.get("timers", []) if dt.datetime.fromisoformat(t["ends_at"]) > self.clock
        ]

    # access -----------------------------------------------------------------------
    def get(self, path: str, default: Any = None) -> Any:
        node: Any = self.state
        for part in path.split("."):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            else:
                return default
        return node

    def set(self, path: str, value: Any) -> None:
        parts = path.split(".")
        node = self.state
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def items(self, collection: str) -> Iterator[tuple[str, dict]]:
        """(id, object) pairs of a mapping collection such as ``devices``."""
        coll = self.get(collection, {})
        if isinstance(coll, Mapping):
            yield from coll.items()

    def select(self, collection: str, where: Mapping[str, Any]) -> list[tuple[str, dict]]:
        """Objects whose fields equal every non-null value in ``where``."""
        conds = {k: v for k, v in where.items() if v is not None}
        return [(oid, obj) for oid, obj in self.items(collection) if all(obj.get(k) == v for k, v in conds.items())]

    # snapshots ----------------------------------------------------------------------
    def snapshot(self) -> "World":
        return World(self.state, self.clock)

    def to_json(self) -> dict:
        return {"clock": self.clock.isoformat(), "state": copy_tree(self.state)}
