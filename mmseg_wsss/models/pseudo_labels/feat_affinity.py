"""Feature-affinity refinement: propagate localisation maps over the token
affinity of a backbone's features (training-free; beside PAR and DenseCRF).

``A = rownorm(ReLU(cos(f_i, f_j))^beta [* colour term] [* position term])``
(with ``center``, the cosine of the features minus their per-image mean)
and ``map <- map A^T`` for ``steps`` steps, on the token grid: a token takes
the affinity-weighted mean of the maps of the tokens that look like it, so a
map that lights a few patches of an object spreads over the patches of the
same object (frozen foundation features separate objects well) and not over
the background.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def token_affinity(feats: Tensor,
                   beta: float = 1.0,
                   colors: Optional[Tensor] = None,
                   color_sigma: float = 0.1,
                   pos_sigma: Optional[float] = None,
                   center: bool = False) -> Tensor:
    """Row-normalised affinity of the tokens of a feature map.

    Args:
        feats (Tensor): (B, C, h, w) token features.
        beta (float): Power of the clipped cosine similarity (sharpens).
        colors (Tensor, optional): (B, 3, h, w) mean colour of each token's
            patch in [0, 1]; multiplies the affinity by
            ``exp(-|c_i - c_j|^2 / (2 color_sigma^2))``.
        color_sigma (float): Colour scale of that term. Default 0.1.
        pos_sigma (float, optional): multiplies by
            ``exp(-|p_i - p_j|^2 / (2 pos_sigma^2))``, positions in tokens.
        center (bool): Subtract each image's mean token before the cosine:
            a component all tokens share (a backbone whose tokens all look
            alike) then no longer links every token to every other.

    Returns:
        Tensor: (B, N, N) with rows summing to 1, N = h * w.
    """
    b, c, h, w = feats.shape
    f = feats.flatten(2).float()
    if center:
        f = f - f.mean(dim=2, keepdim=True)
    f = F.normalize(f, dim=1)  # (B, C, N)
    aff = torch.bmm(f.transpose(1, 2), f).clamp(min=0)**beta
    if colors is not None:
        col = colors.flatten(2).float()
        d2 = (col[:, :, :, None] - col[:, :, None, :]).pow(2).sum(1)
        aff = aff * torch.exp(-d2 / (2 * color_sigma**2))
    if pos_sigma is not None:
        ys, xs = torch.meshgrid(
            torch.arange(h, device=feats.device, dtype=torch.float32),
            torch.arange(w, device=feats.device, dtype=torch.float32),
            indexing='ij')
        pos = torch.stack([ys.flatten(), xs.flatten()])  # (2, N)
        d2 = (pos[:, :, None] - pos[:, None, :]).pow(2).sum(0)
        aff = aff * torch.exp(-d2 / (2 * pos_sigma**2))[None]
    return aff / aff.sum(-1, keepdim=True).clamp(min=1e-12)


@torch.no_grad()
def feature_affinity_refine(maps: Tensor,
                            feats: Tensor,
                            beta: float = 1.0,
                            steps: int = 1,
                            present: Optional[Tensor] = None,
                            colors: Optional[Tensor] = None,
                            color_sigma: float = 0.1,
                            pos_sigma: Optional[float] = None,
                            center: bool = False) -> Tensor:
    """Propagate ``maps`` over the affinity of ``feats``.

    Args:
        maps (Tensor): (B, K, H, W) non-negative maps (CAMs, scores) at any
            size; pooled to the token grid, propagated, resized back
            (bilinear).
        feats (Tensor): (B, C, h, w) token features of the same images.
        beta (float): Affinity power. Default 1.
        steps (int): Propagation steps (>= 1). Default 1.
        present (Tensor, optional): (B, K) image labels; the maps of absent
            classes are set to 0 (restriction to present classes).
        colors, color_sigma, pos_sigma, center: See
            :func:`token_affinity`.

    Returns:
        Tensor: (B, K, H, W) refined maps, same dtype as ``maps``.
    """
    if steps < 1:
        raise ValueError(f'steps must be >= 1, got {steps}')
    if maps.shape[0] != feats.shape[0]:
        raise ValueError(f'{maps.shape[0]} maps for {feats.shape[0]} '
                         'feature maps')
    b, k, hh, ww = maps.shape
    h, w = feats.shape[-2:]
    aff = token_affinity(feats, beta, colors, color_sigma, pos_sigma, center)
    m = maps.float()
    if (hh, ww) != (h, w):
        m = F.adaptive_avg_pool2d(m, (h, w))
    m = m.flatten(2)  # (B, K, N)
    for _ in range(steps):
        m = torch.bmm(m, aff.transpose(1, 2))
    m = m.view(b, k, h, w)
    if (hh, ww) != (h, w):
        m = F.interpolate(m, size=(hh, ww), mode='bilinear',
                          align_corners=False)
    if present is not None:
        m = m * present.to(m)[..., None, None]
    return m.to(maps.dtype)
