"""Rebuild a trained tracker from a checkpoint file alone: kept as a name; the code is
unitrack/model/checkpoint.py, which reads every file as data (weights-only) and checks the model config."""

from unitrack.model.checkpoint import load_model, model_from_checkpoint

__all__ = ["load_model", "model_from_checkpoint"]
