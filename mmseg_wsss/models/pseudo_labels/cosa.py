"""CoSA's pseudo-label functions (``methods.md`` §2.4, §2.6)."""
from typing import Tuple

import torch
from torch import Tensor


def raw_weights(cam: Tensor,
                img_labels: Tensor,
                low_thr: float,
                high_thr: float,
                temperature: float = 0.1,
                beta: float = 1.0) -> Tuple[Tensor, Tensor]:
    """Reliability-based adaptive weighting (RAW) [reconstruction].

    Per pixel, ``q = softmax([b; cam_k for present k] / T)`` with the
    background score ``b = (low_thr + high_thr) / 2``; perplexity
    ``PPL = exp(H(q))`` in [1, K_img + 1]; weight ``w = PPL^-beta`` (one-hot
    q -> 1, uniform q over n classes -> n^-beta). Every pixel gets the
    argmax label of q (the uncertain band included) and its weight.

    Args:
        cam (Tensor): (B, K, H, W) normalised CAMs.
        img_labels (Tensor): (B, K) multi-hot labels.
        low_thr, high_thr (float): Current thresholds.
        temperature (float): T_r. Defaults to 0.1.
        beta (float): Defaults to 1.

    Returns:
        tuple[Tensor, Tensor]: labels (B, H, W) int64 in 0..K and detached
        weights (B, H, W) in (0, 1].
    """
    b = (low_thr + high_thr) / 2
    bg = cam.new_full((cam.shape[0], 1, *cam.shape[2:]), b)
    logits = torch.cat([bg, cam], dim=1) / temperature
    keep = torch.cat([img_labels.new_ones(img_labels.shape[0], 1),
                      img_labels], dim=1).bool()[:, :, None, None]
    logits = logits.masked_fill(~keep, float('-inf'))
    q = logits.softmax(dim=1)
    entropy = -torch.special.xlogy(q, q).sum(dim=1)
    weight = torch.exp(-beta * entropy)
    return q.argmax(dim=1), weight.detach()


def seg_pseudo_label(seg_logits: Tensor,
                     img_labels: Tensor,
                     temperature: float = 0.01) -> Tensor:
    """Segmentation pseudo-label (SPL): a sharpened softmax of the
    segmentation logits over background and the present classes.

    Args:
        seg_logits (Tensor): (B, K+1, H, W) logits.
        img_labels (Tensor): (B, K) multi-hot labels; absent classes get
            logit -1e5 (background is always kept).
        temperature (float): T. Defaults to 0.01.

    Returns:
        Tensor: (B, K+1, H, W) probabilities.
    """
    keep = torch.cat([img_labels.new_ones(img_labels.shape[0], 1),
                      img_labels], dim=1).bool()[:, :, None, None]
    logits = seg_logits.float().masked_fill(~keep, -1e5)
    return (logits / temperature).softmax(dim=1)
