"""Language understanding: a spaCy pipeline trained from domain specs or annotated corpora."""

import sys


def _import_spacy_without_torch() -> None:
    """spaCy imports thinc, and thinc imports torch whenever it is installed: 2.3 s of a cold
    start (measured with ``python -X importtime``), though these pipelines have no torch layers
    (MiniLM features come from core.embeddings, which imports torch itself when needed).
    torch is hidden while spaCy loads, unless something loaded it already."""
    if "spacy" in sys.modules or "torch" in sys.modules:
        return
    sys.modules["torch"] = None  # `import torch` raises ImportError: thinc goes without
    try:
        import spacy  # noqa: F401
    finally:
        del sys.modules["torch"]


_import_spacy_without_torch()

from stages.nlu.stage import NluOptions, NluStage, load_or_train  # noqa: E402

__all__ = ["NluOptions", "NluStage", "load_or_train"]
