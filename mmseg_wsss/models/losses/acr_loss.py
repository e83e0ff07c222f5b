from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor


def hflip_token_permutation(grid: Tuple[int, int],
                            device=None) -> Tensor:
    """Permutation Π of the patch tokens of an (h, w) grid under a
    horizontal flip: token ``r * w + c`` of the flipped image is token
    ``r * w + (w - 1 - c)`` of the original. Π∘Π = identity.

    Returns:
        Tensor: (h*w,) long indices.
    """
    h, w = grid
    idx = torch.arange(h * w, device=device).view(h, w)
    return idx.flip(-1).reshape(-1)


@MODELS.register_module()
class ACRLoss(nn.Module):
    """All-pairs consistency regularisation (``methods.md`` §4).

    On the head-averaged attention Ā_l (B, 1+N, 1+N) of the chosen blocks
    for an image and its horizontal flip (token permutation Π):

    - intensity: ``mean |Ā_l(x)[0, 1+j] - Ā_l(x')[0, 1+Π(j)]|`` (class-token
      row over the patches);
    - all-pairs affinity: ``mean |Ā_l(x)[1+i, 1+j] -
      Ā_l(x')[1+Π(i), 1+Π(j)]|``;

    ``loss = loss_weight * (w_int * L_int + w_aff * L_aff)``; ``loss_weight``
    is the paper's α (125 on VOC, 100 on COCO: attention values are ~1/N).

    It is a *regulariser*: list it in a segmentor's ``regularizers`` and the
    segmentor runs its online backbone once more on the flipped crop (with
    attention) only because this loss asks for it (``needs_flip_attn``).

    Two switches match the authors' training (their loss is
    ``CE(x) + CE(x') + α (L_int + L_aff)``, their ViT has no drop path):

    - ``flip_cls``: the segmentor also applies its image-classification
      losses to the flipped view (logged with the suffix ``_flip``, e.g.
      ``loss_cls_flip``), since that forward is paid for anyway;
    - ``shared_drop_path``: the flipped forward replays the drop-path masks
      of the online forward (:class:`~mmseg_wsss.models.backbones.
      SharedDropPath`), so with drop path on, ACR compares two views of one
      sub-network instead of also penalising independent drop-path noise.
      (Or turn drop path off: ``backbone.drop_path_rate=0``.)

    Args:
        loss_weight (float): α. Default 125.
        blocks (Sequence[int], optional): Block indices (negative allowed);
            default every block.
        intensity (bool): Use L_int. Default True.
        affinity (bool): Use L_aff. Default True.
        num_prefix_tokens (int): Tokens before the patches (class token).
        flip_cls (bool): Classify the flipped view too. Default False.
        shared_drop_path (bool): One drop-path mask for both views.
            Default False (independent masks).
        loss_name (str): Default ``'loss_acr'``.

    Example:
        >>> model = dict(regularizers=[dict(type='ACRLoss', loss_weight=125.0,
        ...                                  shared_drop_path=True)])
    """
    needs_flip_attn = True

    def __init__(self,
                 loss_weight: float = 125.0,
                 blocks: Optional[Sequence[int]] = None,
                 intensity: bool = True,
                 affinity: bool = True,
                 num_prefix_tokens: int = 1,
                 flip_cls: bool = False,
                 shared_drop_path: bool = False,
                 loss_name: str = 'loss_acr'):
        super().__init__()
        if not (intensity or affinity):
            raise ValueError('ACRLoss needs intensity and/or affinity')
        self.loss_weight = loss_weight
        self.blocks = None if blocks is None else list(blocks)
        self.intensity = intensity
        self.affinity = affinity
        self.num_prefix_tokens = num_prefix_tokens
        self.flip_cls = flip_cls
        self.shared_drop_path = shared_drop_path
        self._loss_name = loss_name

    def _select(self, attns: List[Tensor]) -> List[Tensor]:
        if self.blocks is None:
            return list(attns)
        return [attns[i] for i in self.blocks]

    def forward(self, attns: List[Tensor], attns_flip: List[Tensor],
                grid: Tuple[int, int]) -> Tensor:
        """
        Args:
            attns (list[Tensor]): per block (B, P+N, P+N) head-averaged
                attention of the image (P prefix tokens, N = h*w patches).
            attns_flip (list[Tensor]): the same for its horizontal flip.
            grid (tuple[int, int]): (h, w) token grid.

        Returns:
            Tensor: scalar loss.
        """
        a, b = self._select(attns), self._select(attns_flip)
        if len(a) != len(b) or not a:
            raise ValueError(f'need the same non-empty set of blocks for '
                             f'both views, got {len(a)} and {len(b)}')
        p = self.num_prefix_tokens
        n = grid[0] * grid[1]
        if a[0].shape[-1] != p + n:
            raise ValueError(f'attention over {a[0].shape[-1]} tokens does '
                             f'not match {p} prefix + {grid} grid tokens')
        perm = hflip_token_permutation(grid, a[0].device) + p
        l_int = l_aff = a[0].new_zeros(())
        for x, y in zip(a, b):
            if self.intensity:
                l_int = l_int + (x[:, 0, p:] - y[:, 0, perm]).abs().mean()
            if self.affinity:
                y_perm = y[:, perm][:, :, perm]
                l_aff = l_aff + (x[:, p:, p:] - y_perm).abs().mean()
        return self.loss_weight * (l_int + l_aff) / len(a)

    @property
    def attn_blocks(self) -> Optional[List[int]]:
        """The blocks whose attention this loss reads (None: every block);
        the segmentor materialises attention only there."""
        return self.blocks

    @property
    def loss_name(self) -> str:
        return self._loss_name
