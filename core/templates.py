"""Response templates: ``{name}``, ``{name.field}`` and ``{name|filter}``.

Names are looked up in the request's arguments first (catalog slots render as their display
name), then in the API result; ``{result.x}`` reads the result explicitly. Filters turn
canonical values into speech: ``duration``, ``time``, ``day``, ``temperature``, ``list``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Callable, Mapping

from core.normalize import say_day, say_duration, say_temperature, say_time

_FIELD = re.compile(r"\{([a-zA-Z_][\w.]*)(?:\|(\w+))?\}")
_MISSING = "\0"
_VALUE = "\1"  # where a value's words begin, for the article before them
_ARTICLE = re.compile(r"\b([Aa]) " + _VALUE + r"(?=[aeioAEIO])(?![Oo]n(?:e|ce)\b)")
_DANGLING = re.compile(r"(?:\s+(?:in|on|at|for|to|of|from|with|by))?(?:\s+(?:the|a|an|my))?\s*\0", re.IGNORECASE)


def _say_list(items: Any) -> str:
    items = [str(i) for i in (items or [])]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _filters(today: dt.date | None) -> dict[str, Callable[[Any], str]]:
    return {
        "duration": lambda v: say_duration(int(v)),
        "time": lambda v: say_time(str(v)),
        "day": lambda v: say_day(v, today),
        "temperature": lambda v: say_temperature(v) if isinstance(v, Mapping) else f"{v} degrees",
        "list": _say_list,
    }


def _lookup(path: str, scopes: list[Mapping]) -> Any:
    head, *rest = path.split(".")
    for scope in scopes:
        if head in scope:
            node = scope[head]
            for part in rest:
                if isinstance(node, Mapping) and part in node:
                    node = node[part]
                else:
                    return None
            return node
    return None


def render(template: str, args: Mapping, result: Mapping, today: dt.date | None = None) -> str:
    filters = _filters(today)

    def sub(m: re.Match) -> str:
        value = _lookup(m.group(1), [args, {"result": result}, result])
        f = m.group(2)
        if value is None:
            return _MISSING
        return _VALUE + said(value, f)

    def said(value: Any, f: str | None) -> str:
        if f:
            try:
                return filters[f](value)
            except (KeyError, ValueError, TypeError):
                return str(value)
        if isinstance(value, Mapping):
            return str(value.get("name", value.get("value", "")))
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value)

    # a value the request left out takes the words that only lead up to it along:
    # "I couldn't find a fan in the {room}." without a room is "I couldn't find a fan."
    text = _DANGLING.sub("", _FIELD.sub(sub, template))
    # "a {device}" is "an overhead" when the user's words begin with a vowel sound
    text = _ARTICLE.sub(r"\1n ", text).replace(_VALUE, "")
    return re.sub(r"\s+([,.?!])", r"\1", re.sub(r"\s{2,}", " ", text)).strip()
