"""The tracker model: LoRAT (LoRA-tuned one-stream ViT) + X branch + per-modality LoRA experts."""

from unitrack.model.experts import MODALITIES
from unitrack.model.lorat import LoRATTracker, build_model
from unitrack.model.loss import box_iou, giou, lorat_loss

__all__ = ["MODALITIES", "LoRATTracker", "box_iou", "build_model", "giou", "lorat_loss"]
