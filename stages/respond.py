"""Dialogue policy and execution: decide, act on the world, say it.

Given a resolution and the dialogue state, the responder either asks (a missing required
slot, a clarification, a confirmation) or executes the intent's API and renders the reply
from the spec's templates. :func:`next_dialogue` derives the next dialogue state from the
turn's records — it is a pure function, so the runner owns the state and stages never do.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from core.apis import ApiRunner
from core.domain import Domain
from core.records import Outcome, Resolution, frozen_map
from core.templates import render

log = logging.getLogger(__name__)


class Responder:
    name = "respond"

    def __init__(self, domain: Domain):
        self.domain = domain
        self.apis = ApiRunner(domain)

    def _say(self, template_key: str, intent: str | None, args: Mapping, result: Mapping, ctx) -> str:
        template = self.domain.response(intent, template_key) or self.domain.responses["failed"]
        return render(template, args, result, ctx.now.date())

    def run(self, res: Resolution, ctx) -> Outcome:
        pending = ctx.dialogue.pending
        if res.intent is None:
            return Outcome(
                intent=None,
                status="unsupported",
                reply_type="out_of_domain",
                reply=self.domain.responses["out_of_domain"],
            )
        if res.intent in ("Affirm", "Deny"):
            return self._answer_to_question(res.intent, pending, ctx)

        spec = self.domain.intents[res.intent]
        args = request_args(res)
        names = {e.slot: e.name for e in res.entities if e.name}
        display = {**args, **names}
        if res.clarification is not None:
            partial = {k: v for k, v in args.items() if k != res.clarification.slot}
            return Outcome(
                intent=spec.name,
                args=frozen_map(partial),
                status="clarify",
                reply=res.clarification.question,
                reply_type="clarify",
                expects=res.clarification.slot,
            )
        unresolved = [e for e in res.entities if e.id is None]
        if unresolved:
            e = unresolved[0]
            return Outcome(
                intent=spec.name,
                args=frozen_map(args),
                status="not_found",
                reply_type="apology",
                reply=self._say("not_found", spec.name, {**display, e.slot: e.text}, {}, ctx),
            )
        missing = [n for n, s in spec.slots.items() if s.required and n not in args]
        if missing:
            slot = spec.slots[missing[0]]
            return Outcome(
                intent=spec.name,
                args=frozen_map(args),
                status="elicit",
                reply_type="elicit",
                reply=slot.prompt or f"What {slot.name.replace('_', ' ')}?",
                expects=slot.name,
            )
        if spec.require_one and not any(n in args for n in spec.require_one):
            return Outcome(
                intent=spec.name,
                args=frozen_map(args),
                status="elicit",
                reply_type="elicit",
                reply=spec.prompt or "Could you say more?",
                expects=spec.require_one[0],
            )
        if spec.confirm:
            preview = self._preview(spec, args, names, ctx)
            return Outcome(
                intent=spec.name,
                args=frozen_map(args),
                status="confirm",
                reply_type="confirm",
                reply=render(spec.confirm, {**display, **preview}, preview, ctx.now.date()),
                expects="confirmation",
            )
        return self._execute(spec.name, args, names, ctx)

    # internals -------------------------------------------------------------------------
    def _execute(self, intent: str, args: Mapping, names: Mapping, ctx) -> Outcome:
        spec = self.domain.intents[intent]
        if spec.api is None:
            return Outcome(
                intent=intent,
                args=frozen_map(args),
                status="ok",
                reply_type="answer",
                reply=self._say("ok", intent, {**args, **names}, {}, ctx),
            )
        call_args = {**spec.args, **args}
        result = self.apis.call(spec.api, call_args, names, ctx.world, ctx)
        reply = self._say(result.status, intent, {**call_args, **names}, result.data, ctx)
        reply_type = (
            ("answer" if result.kind == "answer" else "action")
            if result.status in ("ok", "unchanged", "empty", "set_point")
            else "apology"
        )
        return Outcome(
            intent=intent,
            args=frozen_map(args),
            api=spec.api,
            status=result.status,
            result=result.data,
            reply=reply,
            reply_type=reply_type,
        )

    def _preview(self, spec, args: Mapping, names: Mapping, ctx) -> dict:
        """What a confirmation question should name, without changing the world."""
        world = ctx.world.snapshot()
        result = self.apis.call(spec.api, {**spec.args, **args}, names, world, ctx) if spec.api else None
        return dict(result.data) if result else {}

    def _answer_to_question(self, act: str, pending, ctx) -> Outcome:
        if pending is None:
            return Outcome(intent=act, status="ok", reply_type="answer", reply=self.domain.responses["nothing_pending"])
        if act == "Affirm" and pending.kind == "confirm":
            names = {}
            for slot, value in pending.args.items():
                sspec = self.domain.intents[pending.intent].slots.get(slot)
                catalog = self.domain.catalog_for(sspec.type) if sspec else None
                v = catalog.get(value) if catalog and isinstance(value, str) else None
                if v is not None:
                    names[slot] = v.name
            return self._execute(pending.intent, dict(pending.args), names, ctx)
        if act == "Deny":
            reply = self.domain.response(pending.intent, "cancelled") or self.domain.responses["cancelled"]
            return Outcome(
                intent=pending.intent,
                args=frozen_map(pending.args),
                status="cancelled",
                reply_type="answer",
                reply=reply,
            )
        # "yes" to a question that wants a value: ask again
        return Outcome(
            intent=pending.intent,
            args=frozen_map(pending.args),
            status=pending.kind,
            reply_type="elicit" if pending.kind == "elicit" else pending.kind,
            reply=pending.question or self.domain.responses["not_understood"],
            expects=pending.slot,
        )


def request_args(res: Resolution) -> dict[str, Any]:
    """The request as the API sees it: entity ids for catalog slots, values for builtins."""
    args: dict[str, Any] = {e.slot: e.id for e in res.entities if e.id is not None}
    args.update(res.values)
    return args
