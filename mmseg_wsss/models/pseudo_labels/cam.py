"""CAM post-processing shared by every method (``methods.md`` §1.3, §1.4).

All functions take and return plain tensors, so they can be reused outside the
segmentors and tested in isolation.
"""
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def normalize_cam(cam: Tensor, eps: float = 1e-5) -> Tensor:
    """Min-max normalise CAMs per image and per class.

    Args:
        cam (Tensor): (B, K, H, W) activation maps (any range).
        eps (float): Added to the denominator. Defaults to 1e-5.

    Returns:
        Tensor: (B, K, H, W) maps in [0, 1).
    """
    flat = cam.flatten(2)
    cmin = flat.min(dim=-1, keepdim=True)[0]
    cmax = flat.max(dim=-1, keepdim=True)[0]
    return ((flat - cmin) / (cmax - cmin + eps)).view_as(cam)


def mask_cam_by_labels(cam: Tensor, img_labels: Tensor) -> Tensor:
    """Zero the maps of classes absent from the image-level labels.

    Args:
        cam (Tensor): (B, K, H, W).
        img_labels (Tensor): (B, K) multi-hot foreground labels.
    """
    return cam * img_labels[:, :, None, None].to(cam.dtype)


def cam_to_label(cam: Tensor,
                 img_labels: Tensor,
                 low_thr: float,
                 high_thr: float,
                 valid_mask: Optional[Tensor] = None,
                 ignore_index: int = 255) -> Tensor:
    """Turn normalised CAMs into a hard pseudo-label with two thresholds.

    ``m(p) = max_k cam_k(p)`` over the present classes. A pixel is labelled
    ``1 + argmax_k`` where ``m > high_thr``, background (0) where
    ``m <= low_thr`` and ``ignore_index`` in between and outside the valid
    region (``methods.md`` §1.4).

    Args:
        cam (Tensor): (B, K, H, W) normalised CAMs in [0, 1].
        img_labels (Tensor): (B, K) multi-hot labels; absent classes are
            never assigned.
        low_thr (float): Background threshold tau_l.
        high_thr (float): Foreground threshold tau_h (>= tau_l).
        valid_mask (Tensor, optional): (B, H, W) bool/0-1 mask of the pixels
            that come from the image (not crop padding).
        ignore_index (int): Label of uncertain pixels. Defaults to 255.

    Returns:
        Tensor: (B, H, W) int64 labels in {0..K, ignore_index}.
    """
    if low_thr > high_thr:
        raise ValueError(f'low_thr ({low_thr}) must not exceed high_thr '
                         f'({high_thr})')
    score, idx = mask_cam_by_labels(cam, img_labels).max(dim=1)
    label = idx + 1
    label[score <= high_thr] = ignore_index
    label[score <= low_thr] = 0
    if valid_mask is not None:
        label[~valid_mask.bool()] = ignore_index
    return label


def cam_to_label_with_bg_threshold(cam: Tensor, img_labels: Tensor,
                                   bg_thr: float) -> Tensor:
    """Standard CAM evaluation protocol: background score is a constant.

    Args:
        cam (Tensor): (B, K, H, W) normalised CAMs.
        img_labels (Tensor): (B, K) multi-hot labels.
        bg_thr (float): Constant background score.

    Returns:
        Tensor: (B, H, W) int64 labels in {0..K}.
    """
    cam = mask_cam_by_labels(cam, img_labels)
    bg = cam.new_full((cam.shape[0], 1, *cam.shape[2:]), bg_thr)
    return torch.cat([bg, cam], dim=1).argmax(dim=1)


def resize_to_multiple(img: Tensor, scale: float, multiple: int) -> Tensor:
    """Resize ``img`` by ``scale`` so that both sides are multiples of
    ``multiple`` (the ViT patch size), rounding to the nearest multiple."""
    h, w = img.shape[-2:]
    nh = max(multiple, int(round(h * scale / multiple)) * multiple)
    nw = max(multiple, int(round(w * scale / multiple)) * multiple)
    if (nh, nw) == (h, w):
        return img
    return F.interpolate(img, size=(nh, nw), mode='bilinear',
                         align_corners=False)


def multi_scale_flip(fn: Callable[[Tensor], Dict[str, Tensor]],
                     img: Tensor,
                     scales: Sequence[float] = (1.0, ),
                     flip: bool = True,
                     size: Optional[Tuple[int, int]] = None,
                     multiple: int = 1,
                     pair_reduce: Optional[Dict[str, str]] = None
                     ) -> Dict[str, Tensor]:
    """Run ``fn`` over scales (and horizontal flips) and aggregate its maps.

    The flipped copy is batched with the original, so each scale is a single
    call of ``fn``. Every output map is bilinearly resized to ``size``,
    flipped back, reduced over the flip pair and summed over scales.

    Args:
        fn (callable): Image batch (N, 3, h, w) -> dict of (N, C, h', w') maps.
        img (Tensor): (B, 3, H, W) input.
        scales (Sequence[float]): Scale factors.
        flip (bool): Also run the horizontally flipped image.
        size (tuple, optional): Output size; defaults to (H, W).
        multiple (int): Resized inputs are rounded to this multiple.
        pair_reduce (dict, optional): Per output key, how to merge an image
            and its flip: ``'max_relu'`` -> ``ReLU(max(a, b))`` (CAMs,
            ``methods.md`` §1.3) or ``'sum'`` (logits). Default ``'sum'``.

    Returns:
        dict[str, Tensor]: Aggregated (B, C, *size) maps.
    """
    pair_reduce = pair_reduce or {}
    size = tuple(size or img.shape[-2:])
    b = img.shape[0]
    out: Dict[str, Tensor] = {}
    for s in scales:
        x = resize_to_multiple(img, s, multiple)
        if flip:
            x = torch.cat([x, x.flip(-1)], dim=0)
        for key, value in fn(x).items():
            value = F.interpolate(value.float(), size=size, mode='bilinear',
                                  align_corners=False)
            if flip:
                a, f = value[:b], value[b:].flip(-1)
                if pair_reduce.get(key, 'sum') == 'max_relu':
                    value = torch.maximum(a, f).relu()
                else:
                    value = a + f
            elif pair_reduce.get(key, 'sum') == 'max_relu':
                value = value.relu()
            out[key] = value if key not in out else out[key] + value
    return out
