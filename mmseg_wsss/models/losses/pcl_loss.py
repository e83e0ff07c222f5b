import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class PatchContrastiveLoss(nn.Module):
    """APC's patch contrastive loss (``methods.md`` §3, [reconstruction]).

    Similarity ``S_ij = (1 + cos(f_i, f_j)) / 2`` of patch embeddings. For
    every image and every present class c (background included): ``H_c`` =
    patches with ``P_ic >= high_thr``, ``L_c`` = the ``|H_c|`` patches with
    the lowest ``P_ic``;
    ``L_c = mean_{i != j in H_c} (1 - S_ij) + mean_{i in H_c, j in L_c} S_ij``
    (an empty pair set contributes 0). The loss is the mean of ``L_c`` over
    all (image, present class) pairs.

    Args:
        high_thr (float): Confidence of ``H_c``. Default 0.85.
        loss_weight (float): λ_pcl. Default 0.02.
        loss_name (str): Default ``'loss_pcl'``.

    Example:
        >>> loss_pcl = dict(type='PatchContrastiveLoss', high_thr=0.85,
        ...                 loss_weight=0.02)
    """

    def __init__(self, high_thr: float = 0.85, loss_weight: float = 0.02,
                 loss_name: str = 'loss_pcl'):
        super().__init__()
        self.high_thr = high_thr
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, emb: Tensor, probs: Tensor, labels: Tensor) -> Tensor:
        """
        Args:
            emb (Tensor): (B, C, h, w) patch embeddings.
            probs (Tensor): (B, K+1, h, w) per-patch class probabilities
                (used without gradient to pick the patches).
            labels (Tensor): (B, K+1) presence, background first.
        """
        f = F.normalize(emb.flatten(2).transpose(1, 2), dim=-1)  # (B, N, C)
        p = probs.detach().flatten(2).transpose(1, 2)  # (B, N, K+1)
        terms = []
        for b in range(f.shape[0]):
            sim = (1 + f[b] @ f[b].t()) / 2  # (N, N)
            for c in torch.nonzero(labels[b] > 0).flatten().tolist():
                high = torch.nonzero(p[b, :, c] >= self.high_thr).flatten()
                n = len(high)
                term = sim.sum() * 0  # keeps empty sets in the graph
                if n >= 2:
                    s = sim[high][:, high]
                    off = ~torch.eye(n, dtype=torch.bool, device=s.device)
                    term = term + (1 - s[off]).mean()
                if n >= 1:
                    low = p[b, :, c].argsort()[:n]
                    term = term + sim[high][:, low].mean()
                terms.append(term)
        if not terms:
            return emb.sum() * 0
        return self.loss_weight * torch.stack(terms).mean()

    @property
    def loss_name(self) -> str:
        return self._loss_name
