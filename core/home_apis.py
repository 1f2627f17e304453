"""The home domain's computed APIs: devices by room, timers, alarms, weather, media, time.

Everything is deterministic: the weather is a function of place and date, the time is the
session clock. Registered under ``home.*`` for the spec's ``python:`` references.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

from core.api_calls import ApiCall, ApiResult, display_name, python_api
from core.records import frozen_map

log = logging.getLogger(__name__)

CONDITIONS = ("sunny", "partly cloudy", "cloudy", "light rain", "rain", "thunderstorms", "fog", "snow", "windy")


def _targets(call: ApiCall, device_type: str | None, room: str | None) -> list[tuple[str, dict]]:
    """Devices of a type in a room; without a room, the ones in the assistant's own room,
    else the only one, else all of them (\"turn off the lights\")."""
    found = call.world.select("devices", {"type": device_type, "room": room})
    if room is None and len(found) > 1:
        here = [(i, o) for i, o in found if o.get("room") == call.ctx.device.room]
        if here:
            return here
    return found


def _result(status: str, targets, kind: str = "action", **extra) -> ApiResult:
    data = {"target": " and ".join(display_name(i, o) for i, o in targets), "ids": [i for i, _o in targets]}
    data.update(extra)
    return ApiResult(status, frozen_map(data), kind)


@python_api("home.set_power")
def set_power(call: ApiCall) -> ApiResult:
    targets = [(i, o) for i, o in _targets(call, call.args.get("device"), call.args.get("room")) if "power" in o]
    if not targets:
        return _result("not_found", [])
    power = call.args["power"]
    status = "unchanged" if all(o["power"] == power for _i, o in targets) else "ok"
    for _i, o in targets:
        o["power"] = power
    return _result(status, targets)


@python_api("home.set_brightness")
def set_brightness(call: ApiCall) -> ApiResult:
    targets = _targets(call, call.args.get("device") or "light", call.args.get("room"))
    targets = [(i, o) for i, o in targets if "brightness" in o]
    if not targets:
        return _result("not_found", [])
    level = call.args.get("level")
    if level is None:  # "dim the lights": down by a third, at least to 10 %
        level = max(10, int(targets[0][1]["brightness"] * 2 / 3))
    for _i, o in targets:
        o["brightness"] = int(level)
        o["power"] = "on"
    return _result("ok", targets, level=int(level))


@python_api("home.get_temperature")
def get_temperature(call: ApiCall) -> ApiResult:
    targets = [(i, o) for i, o in call.world.select("devices", {"type": call.args.get("device")}) if "current" in o]
    if not targets:
        return _result("not_found", [], "answer")
    oid, obj = targets[0]
    status = (
        "set_point"
        if obj.get("power") == "on"
        and obj.get("setpoint") not in (None, obj.get("current"))
        and obj.get("type") == "oven"
        else "ok"
    )
    return _result(status, [(oid, obj)], "answer", current=obj["current"], setpoint=obj.get("setpoint"))


def _timers(call: ApiCall) -> list[dict]:
    return sorted(call.world.state.setdefault("timers", []), key=lambda t: t["ends_at"])


@python_api("home.set_timer")
def set_timer(call: ApiCall) -> ApiResult:
    seconds = int(call.args["duration"])
    if seconds <= 0:
        return ApiResult("failed", frozen_map({"reason": "duration must be positive"}))
    timers = call.world.state.setdefault("timers", [])
    ends = call.world.clock + dt.timedelta(seconds=seconds)
    timer = {"id": f"timer-{len(timers) + 1}", "duration": seconds, "ends_at": ends.isoformat()}
    timers.append(timer)
    return ApiResult("ok", frozen_map(timer))


@python_api("home.cancel_timer")
def cancel_timer(call: ApiCall) -> ApiResult:
    timers = _timers(call)
    if not timers:
        return ApiResult("not_found", frozen_map({}))
    latest = max(timers, key=lambda t: t["id"])
    call.world.state["timers"] = [t for t in timers if t is not latest]
    return ApiResult("ok", frozen_map(latest))


@python_api("home.get_timer")
def get_timer(call: ApiCall) -> ApiResult:
    timers = _timers(call)
    if not timers:
        return ApiResult("not_found", frozen_map({}), "answer")
    soonest = timers[0]
    remaining = (dt.datetime.fromisoformat(soonest["ends_at"]) - call.world.clock).total_seconds()
    return ApiResult("ok", frozen_map({**soonest, "remaining": max(0, int(round(remaining)))}), "answer")


@python_api("home.set_alarm")
def set_alarm(call: ApiCall) -> ApiResult:
    hh, mm = (int(x) for x in str(call.args["time"]).split(":"))
    now = call.world.clock
    date = call.args.get("date")
    day = dt.date.fromisoformat(date) if date else now.date()
    when = dt.datetime.combine(day, dt.time(hh, mm))
    if not date and when <= now:
        when += dt.timedelta(days=1)
    alarms = call.world.state.setdefault("alarms", [])
    alarm = {"id": f"alarm-{len(alarms) + 1}", "time": f"{hh:02d}:{mm:02d}", "date": when.date().isoformat()}
    alarms.append(alarm)
    return ApiResult("ok", frozen_map(alarm))


def weather_for(place_id: str, date: str, lat: float) -> dict:
    """A deterministic forecast: seasonal by latitude, varied by a hash of place and date."""
    h = int(hashlib.sha256(f"{place_id}|{date}".encode()).hexdigest(), 16)
    d = dt.date.fromisoformat(date)
    season = -(((d.timetuple().tm_yday - 200) / 182.5) ** 2)  # 0 in mid July, -1 in mid January
    base = 88 - 0.9 * abs(lat) + 30 * season + (h % 11) - 5
    condition = CONDITIONS[(h >> 8) % len(CONDITIONS)]
    if condition == "snow" and base > 40:
        condition = "rain"
    high = int(round(base + 8))
    return {"condition": condition, "high": high, "low": high - 10 - (h >> 16) % 8, "date": date}


@python_api("home.get_weather")
def get_weather(call: ApiCall) -> ApiResult:
    place_id = call.args.get("place")
    catalog = call.domain.catalog_for("place")
    place = catalog.get(place_id) if (catalog and place_id) else None
    if place is None:
        return ApiResult("not_found", frozen_map({"place": place_id}), "answer")
    date = call.args.get("date") or call.world.clock.date().isoformat()
    forecast = weather_for(place.id, date, float(place.attributes.get("lat", 40.0)))
    return ApiResult("ok", frozen_map({**forecast, "place": place.name}), "answer")


def _player(call: ApiCall) -> dict:
    return call.world.state.setdefault("player", {"state": "stopped", "item": None, "kind": None})


@python_api("home.play_music")
def play_music(call: ApiCall) -> ApiResult:
    song, artist, genre = (call.args.get(k) for k in ("song", "artist", "genre"))
    names = call.names
    if song:
        what = names.get("song", song) + (f" by {names['artist']}" if artist else "")
        item, kind = song, "song"
    elif artist:
        what, item, kind = f"music by {names.get('artist', artist)}", artist, "artist"
    elif genre:
        what, item, kind = f"some {names.get('genre', genre)}", genre, "genre"
    else:
        return ApiResult("not_found", frozen_map({}))
    player = _player(call)
    player.update({"state": "playing", "item": item, "kind": kind, "what": what, "device": call.ctx.device.id})
    return ApiResult("ok", frozen_map({"what": what, "item": item, "kind": kind}))


@python_api("home.play_media")
def play_media(call: ApiCall) -> ApiResult:
    title = call.args.get("title")
    catalog = call.domain.catalog_for("title")
    value = catalog.get(title) if (catalog and title) else None
    if value is None:
        return ApiResult("not_found", frozen_map({"title": title}))
    kind = value.attributes.get("kind", "title")
    if value.attributes.get("modality") in ("visual", "text") and not call.ctx.device.screen:
        return ApiResult("failed", frozen_map({"reason": "this device has no screen", "kind": kind}))
    player = _player(call)
    player.update(
        {
            "state": "playing",
            "item": value.id,
            "kind": kind,
            "what": f"the {kind} {value.name}",
            "device": call.ctx.device.id,
        }
    )
    return ApiResult("ok", frozen_map({"what": value.name, "kind": kind, "item": value.id}))


@python_api("home.resume")
def resume(call: ApiCall) -> ApiResult:
    player = _player(call)
    if not player.get("item"):
        return ApiResult("not_found", frozen_map({}))
    player["state"] = "playing"
    return ApiResult("ok", frozen_map({"what": player.get("what", player["item"]), "item": player["item"]}))


@python_api("home.stop")
def stop(call: ApiCall) -> ApiResult:
    player = _player(call)
    if player.get("state") != "playing":
        return ApiResult("not_found", frozen_map({}))
    player["state"] = "stopped"
    return ApiResult("ok", frozen_map({"item": player.get("item")}))


@python_api("home.get_time")
def get_time(call: ApiCall) -> ApiResult:
    now = call.world.clock
    return ApiResult("ok", frozen_map({"time": now.strftime("%H:%M"), "date": now.date().isoformat()}), "answer")
