"""ExCEL's pure functions (``clip.md`` §4): attribute-enriched text rows,
feature-surgery CAMs and the decoder affinity of its diversity loss."""
import torch
import torch.nn.functional as F
from torch import Tensor


def attribute_text_rows(fg: Tensor, bg: Tensor, centres: Tensor,
                        keep: float = 0.9) -> Tensor:
    """Text Semantic Enrichment (``attr_aggregate``): each class row plus
    its softmax-weighted attribute centres.

    ``s = fg @ centres`` (K, M); the lowest ``int((1 - keep) M)`` entries of
    each row are dropped (-inf); ``w = softmax(s)`` (no temperature: nearly
    uniform on cosine-scale logits, as the reference); ``t = w centres^T +
    fg``; the background rows appended; every row L2-normalised.

    Args:
        fg (Tensor): (K, D) class rows. bg (Tensor): (B, D) background rows.
        centres (Tensor): (D, M) attribute centres (not renormalised).
    """
    s = fg @ centres
    m = centres.shape[1]
    drop = int(round((1 - keep) * m, 6))
    if drop:
        low = s.topk(drop, dim=1, largest=False).indices
        s = s.scatter(1, low, float('-inf'))
    t = s.softmax(1) @ centres.t() + fg
    rows = torch.cat([t, bg], 0)
    return rows / rows.norm(dim=1, keepdim=True)


def feature_surgery_cams(feats: Tensor, text: Tensor,
                         num_fg: int) -> Tensor:
    """Patch-text maps by feature surgery (``clip_feature_surgery``).

    ``p = softmax(2 <f_cls, t_j>)`` over the rows, ``w_j = p_j / mean(p)``;
    ``e_ij = f_i * t_j * w_j`` minus its mean over the rows (redundant
    features removed); ``s_ij = sum_c e_ij``; min-max over the tokens (class
    token included); the class token dropped and the ``num_fg`` class
    columns kept.

    Args:
        feats (Tensor): (B, 1 + N, D) image-text features (class token
            first).
        text (Tensor): (R, D) rows (classes first, then background).

    Returns:
        Tensor: (B, N, num_fg) maps in [0, 1].
    """
    p = (2 * feats[:, :1] @ text.t()).softmax(-1)          # (B, 1, R)
    w = p / p.mean(-1, keepdim=True)
    e = feats[:, :, None, :] * text[None, None] * w[..., None]
    e = e - e.mean(2, keepdim=True)
    s = e.sum(-1)                                           # (B, 1+N, R)
    lo = s.min(1, keepdim=True)[0]
    hi = s.max(1, keepdim=True)[0]
    s = (s - lo) / (hi - lo).clamp(min=1e-12)
    return s[:, 1:, :num_fg]


def excel_affinity(feat: Tensor, batch_mean: bool = True) -> Tensor:
    """(B, N, N) ``sigmoid(3 (cos(F) - mean(cos(F))))`` of (B, C, h, w)
    decoder features; the mean over the whole batch (``batch_mean``, the
    reference) or per image."""
    f = F.normalize(feat.flatten(2), dim=1)
    cos = f.transpose(1, 2) @ f
    mean = cos.mean() if batch_mean else cos.mean((1, 2), keepdim=True)
    return torch.sigmoid(3 * (cos - mean))
