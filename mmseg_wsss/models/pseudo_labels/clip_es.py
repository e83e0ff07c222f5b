"""CLIP-ES's training-free pseudo-masks as pure functions (``clip.md`` §1).

- :func:`minmax01`: the reference's ``(x - min) / (1e-7 + max(x - min))``;
- :func:`softmax_gradcam`: GradCAM of ``softmax(scale * cos(image, text
  rows))[k]`` at the LayerNorm'd input of the last block, every present
  class in one batched backward (equal to the per-class loop);
  :func:`clip_cam_fns` gives it a CLIP tower's last block and head;
- :func:`sinkhorn_affinity`: class-aware attention affinity's transition
  matrix (column/row normalisation, symmetrise, square);
- :func:`box_mask`: the boxes around a CAM's high part (with the
  reference's last-row/column rule as a switch);
- :func:`caa_refine`: ``refined_i = sum_j T_ij B_j cam_j``;
- :func:`clip_es_scores`: background ``(1 - max)^alpha`` stacked on the
  class maps.
"""
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def minmax01(x: Tensor, eps: float = 1e-7) -> Tensor:
    """Scale each (..., h, w) map to [0, 1] the reference's way."""
    flat = x.flatten(-2)
    x = x - flat.min(-1)[0][..., None, None]
    return x / (eps + x.flatten(-2).max(-1)[0][..., None, None])


def softmax_gradcam(last_block: Callable[[Tensor], Tensor], tokens: Tensor,
                    norm1: Callable[[Tensor], Tensor], head: Callable,
                    text: Tensor, targets: Sequence[int],
                    grid: Sequence[int], scale: float = 100.0) -> Tensor:
    """Softmax-GradCAM of one image for each target row, in one backward.

    Args:
        last_block (callable): ``(x, a) -> tokens`` -- the last block run on
            the input tokens ``x`` with ``a`` as its attention input (the
            LayerNorm'd ``x``; gradient flows only through attention).
        tokens (Tensor): (1, 1 + h*w, C) input of the last block (no grad).
        norm1 (callable): The last block's first LayerNorm.
        head (callable): ``tokens -> (B, D)`` image embedding of the block's
            output (CLIP-ES: ``ln_post`` of the mean patch token, ``@
            proj``).
        text (Tensor): (R, D) unit text rows (present classes, then the
            background words).
        targets (Sequence[int]): The row of each map to compute.
        grid (Sequence[int]): (h, w).
        scale (float): CLIP's logit scale (100).

    Returns:
        Tensor: (len(targets), h, w) maps in [0, 1].
    """
    k = len(targets)
    x = tokens.detach().expand(k, -1, -1)
    with torch.enable_grad():
        a = norm1(x).detach().requires_grad_(True)
        emb = head(last_block(x, a))
        emb = emb / emb.norm(dim=-1, keepdim=True)
        prob = (scale * emb @ text.t()).softmax(-1)
        idx = torch.as_tensor(list(targets), device=prob.device)
        score = prob[torch.arange(k, device=prob.device), idx].sum()
        # backward into the leaf alone (the frozen weights take no grad);
        # not autograd.grad, which module-hook tools (FLOP counters) refuse
        score.backward(inputs=[a])
        grad = a.grad
    act = a.detach()[:, 1:]
    alpha = grad[:, 1:].mean(1, keepdim=True)       # (K, 1, C)
    cam = F.relu((act * alpha).sum(-1))              # (K, N)
    cam = cam.reshape(k, *grid)
    # the reference scales once per layer and once after aggregating
    return minmax01(minmax01(cam))


def clip_cam_fns(backbone):
    """The callables :func:`softmax_gradcam` needs for a :class:`CLIPViT`:
    its last block run on given tokens with a given attention input, that
    block's first LayerNorm, and CLIP-ES's image embedding (``ln_post`` of
    the mean patch token, ``@ proj``)."""
    blk = backbone.blocks[-1]

    def last_block(x, a):
        y, _ = blk.attn(a, with_attn=False)
        x = x + blk.ls1(y)
        return x + blk.ls2(blk.mlp(blk.norm2(x)))

    def head(tokens):
        return backbone.norm(tokens[:, 1:].mean(1)) @ backbone.proj

    return last_block, blk.norm1, head


def sinkhorn_affinity(attn: Tensor, rounds: int = 3,
                      power: int = 2) -> Tensor:
    """(N, N) transition matrix of CLIP-ES's class-aware attention affinity:
    ``rounds`` times divide by the column sums then the row sums,
    symmetrise, then the matrix power (the paper's A^t, t = 2).

    Args:
        attn (Tensor): (N, N) non-negative patch-to-patch attention.
    """
    t = attn.double()
    for _ in range(rounds):
        t = t / t.sum(0, keepdim=True)
        t = t / t.sum(1, keepdim=True)
    t = (t + t.t()) / 2
    return torch.linalg.matrix_power(t, power).to(attn.dtype)


def box_mask(cam: Tensor, threshold: float, last_rule: bool = True) -> Tensor:
    """(h, w) 0/1 mask of the bounding boxes of the connected parts where
    ``floor(255 cam) > int(threshold * max floor(255 cam))`` (8-connected).

    ``last_rule`` (the reference): a box ends at ``min(x + w, W - 1)``
    (half-open), so the last row and column are never in a box; False
    takes the whole box.
    """
    h, w = cam.shape
    u8 = np.floor(cam.detach().float().cpu().numpy() * 255).astype(np.uint8)
    fg = (u8 > int(threshold * int(u8.max()))).astype(np.uint8)
    mask = torch.zeros(h, w, dtype=cam.dtype, device=cam.device)
    n, _, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    for x, y, bw, bh, _ in stats[1:]:
        x1, y1 = x + bw, y + bh
        if last_rule:
            x1, y1 = min(x1, w - 1), min(y1, h - 1)
        mask[y:y1, x:x1] = 1
    return mask


def caa_refine(cam: Tensor, trans: Tensor, box: Tensor) -> Tensor:
    """``refined_i = sum_j T_ij B_j cam_j`` on a (h, w) map, min-max
    scaled."""
    h, w = cam.shape
    v = (box * cam).reshape(-1)
    return minmax01((trans.to(cam) @ v).reshape(h, w))


def clip_es_scores(cams: Tensor, alpha: float = 1.0) -> Tensor:
    """(1 + K, H, W): background ``(1 - max_k cam)^alpha`` over the (K, H, W)
    class maps (CLIP-ES: alpha 1 with the CRF, 2 in its mIoU script)."""
    bg = (1 - cams.max(0, keepdim=True)[0]).clamp(min=0) ** alpha
    return torch.cat([bg, cams], 0)
