"""LoRAT's training loss: IoU-aware classification (BCE) plus GIoU regression on the positive tokens.

A search token is *positive* when its grid cell overlaps the ground-truth box. Its classification target
is the (detached) IoU of its own predicted box with the ground truth, so the score ranks tokens by how
well they localise; every other token is pushed to 0. Both terms are summed and divided by the number of
positives in the batch (at least 1), weight 1 each.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Slack for cell rasterisation: a coordinate within 1e-4 cell of a border counts as on the border, so
# 0.3 * 10 = 3.0000000000000004 does not spill into the next cell.
_CELL_EPS = 1e-4


def box_cell_mask(box: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
    """(B,4) normalised xyxy -> (B, grid_h*grid_w) bool, True where the box covers part of the cell.

    x1,y1 are floored and x2,y2 ceiled in cell units, then clipped to the grid, so a box partly outside
    the crop still marks the cells inside it; a zero-size box inside the crop marks its own cell.
    Shared by the template foreground indicator (LoRAT's token-type embedding) and the loss positives.
    """
    box = box.detach().float()
    x1 = torch.floor(box[:, 0] * grid_w + _CELL_EPS)
    y1 = torch.floor(box[:, 1] * grid_h + _CELL_EPS)
    x2 = torch.maximum(torch.ceil(box[:, 2] * grid_w - _CELL_EPS), x1 + 1)
    y2 = torch.maximum(torch.ceil(box[:, 3] * grid_h - _CELL_EPS), y1 + 1)
    x1, x2 = x1.clamp(0, grid_w), x2.clamp(0, grid_w)
    y1, y2 = y1.clamp(0, grid_h), y2.clamp(0, grid_h)
    cols = torch.arange(grid_w, device=box.device, dtype=box.dtype)
    rows = torch.arange(grid_h, device=box.device, dtype=box.dtype)
    in_x = (cols[None] >= x1[:, None]) & (cols[None] < x2[:, None])  # (B, W)
    in_y = (rows[None] >= y1[:, None]) & (rows[None] < y2[:, None])  # (B, H)
    return (in_y[:, :, None] & in_x[:, None, :]).flatten(1)


def _area(b: torch.Tensor) -> torch.Tensor:
    return (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)


def box_iou(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Element-wise IoU of broadcastable (...,4) xyxy boxes."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = _area(a) + _area(b) - inter
    return inter / (union + eps)


def giou(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Element-wise generalised IoU of broadcastable (...,4) xyxy boxes, in [-1, 1]."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = _area(a) + _area(b) - inter
    iou = inter / (union + eps)
    hull = (torch.maximum(a[..., 2:], b[..., 2:]) - torch.minimum(a[..., :2], b[..., :2])).clamp(min=0).prod(-1)
    return iou - (hull - union) / (hull + eps)


def lorat_loss(
    score: torch.Tensor, box: torch.Tensor, gt: torch.Tensor, feat_size: int | tuple[int, int]
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """score (B,N) logits, box (B,N,4) and gt (B,4) normalised xyxy -> (loss, {"cls","giou","iou"}).

    "iou" is the mean IoU of the positive tokens' boxes (a detached progress figure, not a loss term).
    """
    gh, gw = (feat_size, feat_size) if isinstance(feat_size, int) else feat_size
    if score.shape[1] != gh * gw or box.shape[:2] != score.shape:
        raise ValueError(f"score {tuple(score.shape)} / box {tuple(box.shape)} do not match a {gh}x{gw} grid")
    score, box, gt = score.float(), box.float(), gt.float()
    pos = box_cell_mask(gt, gh, gw)  # (B, N)
    num_pos = pos.sum().clamp(min=1).float()
    pred_pos = box[pos]  # (P, 4)
    gt_pos = gt[:, None, :].expand_as(box)[pos]
    iou_pos = box_iou(pred_pos, gt_pos).detach()
    target = torch.zeros_like(score)
    target[pos] = iou_pos
    cls = F.binary_cross_entropy_with_logits(score, target, reduction="sum") / num_pos
    giou_loss = (1.0 - giou(pred_pos, gt_pos)).sum() / num_pos
    mean_iou = iou_pos.mean() if iou_pos.numel() else score.new_zeros(())
    return cls + giou_loss, {"cls": cls.detach(), "giou": giou_loss.detach(), "iou": mean_iou}
