"""CoSA's CAM losses (``methods.md`` §2.6, §2.7)."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class SegToCAMLoss(nn.Module):
    """L_s2c: the online CAM supervised by the segmentation pseudo-label.

    ``mean over tokens of MLSM(ReLU(M), Q)``, M the raw CAM on the token
    grid and Q the soft SPL of the foreground classes on the same grid.

    Args:
        loss_weight (float): Defaults to 0.05 (CoSA).
        loss_name (str): Defaults to 'loss_s2c'.

    Example:
        >>> loss_s2c = dict(type='SegToCAMLoss', loss_weight=0.05)
    """

    def __init__(self, loss_weight: float = 0.05,
                 loss_name: str = 'loss_s2c'):
        super().__init__()
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, cam: Tensor, target: Tensor, **kwargs) -> Tensor:
        """
        Args:
            cam (Tensor): (B, K, h, w) raw CAM.
            target (Tensor): (B, K, h, w) soft targets in [0, 1].
        """
        if cam.shape != target.shape:
            raise ValueError(f'cam {tuple(cam.shape)} and target '
                             f'{tuple(target.shape)} differ')
        k = cam.shape[1]
        x = cam.relu().permute(0, 2, 3, 1).reshape(-1, k)
        y = target.detach().permute(0, 2, 3, 1).reshape(-1, k)
        return self.loss_weight * F.multilabel_soft_margin_loss(x, y)

    @property
    def loss_name(self) -> str:
        return self._loss_name


@MODELS.register_module()
class ContrastiveSeparationLoss(nn.Module):
    """L_csc: contrastive separation of CAMs [reconstruction].

    Against coexistence (a boat CAM firing on sea). Per image and present
    class c on the token grid: F_c = tokens whose (confident) SPL label is c;
    B_c = confident background tokens on which the online CAM of c is active
    (> ``active_thr``), the coexisting context. With L2-normalised tokens f
    and L2-normalised prototypes p_c = mean f over F_c, n_c = mean f over B_c
    (detached), every token of F_c gets a two-way InfoNCE pulling it to p_c
    and away from n_c, every token of B_c the reverse. The loss is the mean
    over those tokens; classes with an empty F_c or B_c contribute nothing,
    and with no such class the loss is 0.

    Args:
        loss_weight (float): lambda_csc. Defaults to 0.1.
        temperature (float): Defaults to 0.1.
        loss_name (str): Defaults to 'loss_csc'.

    Example:
        >>> loss_csc = dict(type='ContrastiveSeparationLoss', loss_weight=0.1,
        ...                 temperature=0.1)
    """

    def __init__(self, loss_weight: float = 0.1, temperature: float = 0.1,
                 loss_name: str = 'loss_csc'):
        super().__init__()
        self.loss_weight = loss_weight
        self.temperature = temperature
        self._loss_name = loss_name

    def forward(self, feats: Tensor, spl_label: Tensor, cam: Tensor,
                img_labels: Tensor, active_thr: float, **kwargs) -> Tensor:
        """
        Args:
            feats (Tensor): (B, C, h, w) online tokens.
            spl_label (Tensor): (B, h, w) SPL hard labels, 0 background,
                c+1 class c, 255 not confident.
            cam (Tensor): (B, K, h, w) online normalised CAM (detached).
            img_labels (Tensor): (B, K) multi-hot labels.
            active_thr (float): CAM activity threshold (tau_l).
        """
        f = F.normalize(feats, dim=1).flatten(2).transpose(1, 2)  # B, N, C
        labels = spl_label.flatten(1)
        cam = cam.detach().flatten(2)
        losses = []
        for b, c in torch.nonzero(img_labels > 0).tolist():
            fg = labels[b] == c + 1
            bg = (labels[b] == 0) & (cam[b, c] > active_thr)
            if not fg.any() or not bg.any():
                continue
            pos = F.normalize(f[b, fg].mean(0), dim=0).detach()
            neg = F.normalize(f[b, bg].mean(0), dim=0).detach()
            for tokens, own, other in ((f[b, fg], pos, neg),
                                       (f[b, bg], neg, pos)):
                logits = torch.stack([tokens @ own, tokens @ other], dim=1)
                losses.append(
                    F.cross_entropy(
                        logits / self.temperature,
                        logits.new_zeros(len(tokens), dtype=torch.long),
                        reduction='none'))
        if not losses:
            return feats.sum() * 0.0
        return self.loss_weight * torch.cat(losses).mean()

    @property
    def loss_name(self) -> str:
        return self._loss_name
