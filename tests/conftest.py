"""Shared fixtures. The NLU model is trained once per test run into a temporary cache (or
copied there from the models setup.sh trained)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
RECORDINGS = ROOT / "recordings"


def tool(name: str):
    """The script ``tools/NAME.py`` as a module (tools/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# One cache for the whole run (and for CLI subprocesses): the home model trains once.
_OWN_CACHE = not os.environ.get("ASSISTANT_TEST_CACHE")
_CACHE = os.environ.get("ASSISTANT_TEST_CACHE") or tempfile.mkdtemp(prefix="assistant-test-cache-")


def _seed_models(cache: str) -> None:
    """The NLU models that setup.sh already trained, copied into the run's own cache: a model's
    folder name is the hash of everything that trains it (the spec, the recipe, the trainer's
    version), so a folder of that name holds the model the run would train, minutes sooner on
    a CPU without bfloat16. Copies, so the run cannot change the user's cache."""
    from core.config import Config, cache_dir
    from stages.nlu.models import META_FILE

    user = cache_dir(Config.load(path=None, overrides={})) / "nlu"  # XDG_CACHE_HOME is not yet the run's
    mine = Path(cache) / user.parent.name / "nlu"
    for model in sorted(user.glob("*-*")) if user.is_dir() else ():
        if (model / META_FILE).is_file() and not (mine / model.name).exists():
            shutil.copytree(model, mine / model.name)


if _OWN_CACHE:
    _seed_models(_CACHE)
os.environ["XDG_CACHE_HOME"] = _CACHE
os.environ["ASSISTANT_TEST_CACHE"] = _CACHE  # worker processes that import this reuse it
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_sessionfinish(session, exitstatus):
    if _OWN_CACHE:  # a cache the run made for itself goes with it (ASSISTANT_TEST_CACHE is kept)
        shutil.rmtree(_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def config():
    from core.config import Config

    return Config.load(path=None, overrides={})


@pytest.fixture(scope="session")
def assistant(config):
    """A real assistant (models load on first use and are shared by the tests)."""
    from assistant.runner import Assistant

    return Assistant(config)


@pytest.fixture(scope="session")
def text_assistant(assistant):
    return assistant


@pytest.fixture()
def fresh(assistant):
    """A new session on the shared assistant, starting from the default world."""
    counter = {"n": 0}

    def make(**kw):
        counter["n"] += 1
        return assistant.new_session(f"test-{counter['n']}", **kw)

    return make


def say(assistant, session, text, stop="respond"):
    """Run one typed turn from nlu to ``stop``; returns the Turn."""
    return assistant.run_turn(session, assistant.text_turn(session, text), start="nlu", stop=stop)
