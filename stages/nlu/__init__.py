"""Language understanding: a spaCy pipeline trained from domain specs or annotated corpora."""
from stages.nlu.stage import NluOptions, NluStage, load_or_train

__all__ = ["NluOptions", "NluStage", "load_or_train"]
