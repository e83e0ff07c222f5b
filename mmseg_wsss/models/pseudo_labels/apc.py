"""APC's patch pseudo-labels (``methods.md`` §3)."""
import torch
from torch import Tensor


def label_merge(probs: Tensor, img_labels: Tensor,
                return_scores: bool = False) -> Tensor:
    """Label-merge per-patch probabilities into patch pseudo-labels.

    ``P' = P * [1; y]`` (absent classes zeroed, background kept);
    ``P''_c = P'_c / max_patches P'_c`` (each class scaled to peak 1 in its
    image); renormalised per patch; argmax.

    Args:
        probs (Tensor): (B, K+1, h, w) per-patch softmax, background first.
        img_labels (Tensor): (B, K) multi-hot image labels.

        return_scores (bool): Return the renormalised (B, K+1, h, w)
            scores instead of their argmax.

    Returns:
        Tensor: (B, h, w) long labels in 0..K.
    """
    keep = torch.cat([img_labels.new_ones(img_labels.shape[0], 1),
                      img_labels], dim=1).to(probs)
    p = probs * keep[:, :, None, None]
    peak = p.flatten(2).max(dim=-1)[0].clamp(min=1e-8)
    p = p / peak[:, :, None, None]
    p = p / p.sum(dim=1, keepdim=True).clamp(min=1e-8)
    return p if return_scores else p.argmax(dim=1)
