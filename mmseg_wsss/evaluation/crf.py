"""DenseCRF post-processing (``methods.md`` §1.7) on top of ``pydensecrf``.

Used at test time (``test_cfg.crf`` of every WSSS segmentor) and by
``tools/gen_pseudo_labels.py --crf``; never inside the training graph.
"""
from typing import Optional

import numpy as np
import torch
from torch import Tensor

_MISSING = ('DenseCRF needs the `pydensecrf` module; install it with '
            '`pip install pydensecrf2` (the PyPI package `pydensecrf` does '
            'not build on Python >= 3.11)')


def _densecrf():
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError as e:  # pragma: no cover - depends on the env
        raise ImportError(_MISSING) from e
    return dcrf


class DenseCRF:
    """Fully connected CRF refinement of per-pixel class probabilities.

    Unary = -log(probs); a Gaussian (smoothness) kernel and a bilateral
    (appearance) kernel; mean-field inference for ``iterations`` steps.

    Args:
        iterations (int): Mean-field iterations (1-10). Default 10.
        pos_xy_std (float): Gaussian kernel spatial std. Default 3.
        pos_w (float): Gaussian kernel compatibility. Default 3.
        bi_xy_std (float): Bilateral kernel spatial std. Default 64.
        bi_rgb_std (float): Bilateral kernel colour std. Default 5.
        bi_w (float): Bilateral kernel compatibility. Default 4.
        scale_factor (float): Spatial stds are divided by it (refine a
            downscaled image with the same physical kernel). Default 1.

    Raises:
        ImportError: at construction, with the install command, when
            ``pydensecrf`` is missing.
    """

    def __init__(self,
                 iterations: int = 10,
                 pos_xy_std: float = 3.0,
                 pos_w: float = 3.0,
                 bi_xy_std: float = 64.0,
                 bi_rgb_std: float = 5.0,
                 bi_w: float = 4.0,
                 scale_factor: float = 1.0):
        self._dcrf = _densecrf()
        if iterations < 1:
            raise ValueError(f'iterations must be >= 1, got {iterations}')
        self.iterations = int(iterations)
        self.pos_xy_std = pos_xy_std / scale_factor
        self.pos_w = pos_w
        self.bi_xy_std = bi_xy_std / scale_factor
        self.bi_rgb_std = bi_rgb_std
        self.bi_w = bi_w

    def __call__(self, img: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """Refine ``probs``.

        Args:
            img (np.ndarray): (H, W, 3) uint8 RGB image.
            probs (np.ndarray): (C, H, W) class probabilities (each pixel's
                column should sum to 1; it is renormalised).

        Returns:
            np.ndarray: (C, H, W) float32 refined probabilities.
        """
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f'img must be (H, W, 3), got {img.shape}')
        if probs.ndim != 3 or probs.shape[1:] != img.shape[:2]:
            raise ValueError(f'probs must be (C, H, W) with (H, W) = '
                             f'{img.shape[:2]}, got {probs.shape}')
        c, h, w = probs.shape
        probs = np.clip(probs.astype(np.float32), 1e-8, None)
        probs /= probs.sum(0, keepdims=True)
        crf = self._dcrf.DenseCRF2D(w, h, c)
        crf.setUnaryEnergy(
            np.ascontiguousarray(-np.log(probs).reshape(c, -1)))
        crf.addPairwiseGaussian(sxy=self.pos_xy_std, compat=self.pos_w)
        crf.addPairwiseBilateral(
            sxy=self.bi_xy_std,
            srgb=self.bi_rgb_std,
            rgbim=np.ascontiguousarray(img.astype(np.uint8)),
            compat=self.bi_w)
        q = crf.inference(self.iterations)
        return np.asarray(q, dtype=np.float32).reshape(c, h, w)

    def refine_tensor(self, img: np.ndarray, probs: Tensor) -> Tensor:
        """:meth:`__call__` for a (C, H, W) tensor; returns one on the same
        device and dtype."""
        out = self(img, probs.detach().float().cpu().numpy())
        return torch.from_numpy(out).to(probs)


def cam_probs(cams: Tensor, bg_thr: float,
              img_labels: Optional[Tensor] = None) -> Tensor:
    """Per-pixel distribution over (background, K classes) from normalised
    CAMs for the CRF: background score ``bg_thr``, absent classes (when
    ``img_labels`` is given) 0, then divided by the column sum.

    Args:
        cams (Tensor): (K, H, W) CAMs in [0, 1].
        bg_thr (float): Constant background score.
        img_labels (Tensor, optional): (K,) multi-hot image labels.

    Returns:
        Tensor: (K+1, H, W) probabilities.
    """
    if img_labels is not None:
        cams = cams * img_labels.to(cams)[:, None, None]
    bg = cams.new_full((1, *cams.shape[1:]), float(bg_thr))
    scores = torch.cat([bg, cams.clamp(min=0)], dim=0)
    return scores / scores.sum(0, keepdim=True).clamp(min=1e-8)
