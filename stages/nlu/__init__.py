"""Language understanding: MiniLM fine-tuned for intents and slots (or a spaCy pipeline),
trained from domain specs or annotated corpora.

spaCy is imported only where a spaCy pipeline is loaded or trained (stages/nlu/spacy_model.py):
importing it costs over a second of every cold start, and the default model does not use it."""

from stages.nlu.stage import NluOptions, NluStage, load_or_train

__all__ = ["NluOptions", "NluStage", "load_or_train"]
