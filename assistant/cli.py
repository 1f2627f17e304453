"""``assistant``: the single entry point. Each subcommand lives in ``assistant/commands/``.

Exit codes: 0 ok, 2 bad input or usage (one line on stderr naming the problem), 3 an output
could not be written (named the same way), 1 internal error, 130 interrupted. Every
configuration key is also a flag (``--wake-threshold 0.6``), and ``--set KEY=VALUE`` sets any key.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Sequence

from core.config import Config, default_keys
from core.errors import OutputError, UserError
from core.memory import one_arena

log = logging.getLogger("assistant")

# name → module in assistant.commands; each module has add_arguments(parser) and run(args, config).
# Modules not listed here are found too (see _commands): a new command needs no edit here.
COMMANDS = {
    "replay": "replay",
    "models": "models",
    "config": "config_cmd",
    "trace": "trace",
    "talk": "talk",
    "nlu": "nlu",
    "domain": "domain",
    "view": "view",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage otherwise)
        raise UserError(message)


def _config_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("configuration (every key of `assistant config`)")
    group.add_argument("--config", metavar="FILE", help="config file (default: ./assistant.toml if present)")
    group.add_argument(
        "--set", metavar="KEY=VALUE", action="append", default=[], help="set any key, e.g. wake.threshold=0.6"
    )
    for key, value in default_keys().items():
        flag = "--" + key.replace(".", "-").replace("_", "-")
        group.add_argument(
            flag, dest=f"cfg__{key}", metavar=type(value).__name__.upper(), default=None, help=argparse.SUPPRESS
        )


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in args.set:
        if "=" not in item:
            raise UserError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = value
    for name, value in vars(args).items():
        if name.startswith("cfg__") and value is not None:
            out[name[5:]] = value
    return out


def _commands() -> dict[str, str]:
    """The listed commands first, then any other module in assistant/commands/."""
    import pkgutil

    import assistant.commands as package

    found = dict(COMMANDS)
    listed = set(found.values())
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name not in listed and not info.name.startswith("_"):
            found[info.name.removesuffix("_cmd").replace("_", "-")] = info.name
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="assistant", description="A staged, traced, offline voice assistant and its simulator.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in _commands().items():
        mod = importlib.import_module(f"assistant.commands.{module}")
        p = sub.add_parser(name, help=mod.__doc__.strip().splitlines()[0], description=mod.__doc__)
        mod.add_arguments(p)
        _config_flags(p)
        p.set_defaults(_module=mod)
    return parser


def _logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if verbosity < 2:
        for noisy in ("faster_whisper", "spacy", "httpx", "transformers"):
            logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: Sequence[str] | None = None) -> int:
    one_arena()  # before any thread starts (core/memory.py)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for stream in (sys.stdout, sys.stderr):
        # an id, transcript or trace field may hold what UTF-8 cannot encode (a lone surrogate
        # from a "\ud800" escape in JSON): printed escaped instead of failing the command
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        _logging(args.verbose)
        if not getattr(args, "_module", None):
            parser.print_help()
            return 2
        config = Config.load(args.config, _overrides(args))
        return int(args._module.run(args, config) or 0)
    except UserError as err:
        print(f"assistant: {err}", file=sys.stderr)
        return 2
    except OutputError as err:
        print(f"assistant: {err}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("assistant: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as err:  # a bug: say so in one line; -vv shows the traceback
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        print(
            f"assistant: internal error: {type(err).__name__}: {err} (run with -vv for the traceback)", file=sys.stderr
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
