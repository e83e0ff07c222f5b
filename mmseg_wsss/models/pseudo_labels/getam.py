"""Class-token-gradient localisation (GETAM, ``methods.md`` §4)."""
from typing import Optional

import torch
from torch import Tensor


def class_token_gradient_map(backbone,
                             cls_head,
                             inputs: Tensor,
                             start_block: int = -2,
                             classes: Optional[Tensor] = None,
                             affinity: bool = False,
                             affinity_blocks: str = 'all') -> Tensor:
    """Localisation maps from the gradients of class-token scores with
    respect to the attention of the chosen blocks.

    For class c and block l >= ``start_block``: ``g_l = d s_c / d A_l``
    (per head); ``map_c = ReLU(sum_l mean_heads ReLU(g_l)[0, 1:])``; with
    ``affinity``, ``map_c <- (sum_l Ā_l[1:, 1:]) map_c`` with the
    head-averaged patch-patch attention Ā_l summed over every block
    (``affinity_blocks='all'``, as the ACR authors' code does) or over the
    gradient blocks l >= ``start_block`` only (``'chosen'``, this project's
    behaviour before 2026-12). Gradients are taken only with respect to
    the chosen blocks' attention, so backpropagation stops there (earlier
    blocks get none).
    Runs with grad enabled even under ``torch.no_grad()`` (inference).

    Args:
        backbone: A :class:`WSSSViT` (``forward_wsss(x, with_attn='heads')``).
        cls_head: Maps the (B, C) class token to (B, K) scores.
        inputs (Tensor): (B, 3, H, W).
        start_block (int): First block l0 (negative counts from the end;
            the paper's l0 = 10 of 0..11 is -2).
        classes (Tensor, optional): (K,) bool, the classes to compute (e.g.
            present in any image of the batch); others stay 0. Default all.
        affinity (bool): Attention-affinity refinement.
        affinity_blocks (str): ``'all'`` (default) or ``'chosen'``: the
            blocks whose attention the affinity sums.

    Returns:
        Tensor: (B, K, h, w) non-negative maps on the token grid (detached,
        not normalised).
    """
    if affinity_blocks not in ('all', 'chosen'):
        raise ValueError("affinity_blocks must be 'all' or 'chosen', got "
                         f'{affinity_blocks!r}')
    with torch.enable_grad():
        feats = backbone.forward_wsss(inputs, with_attn='heads')
        attns = feats['attns'][start_block:]
        if not attns:
            raise ValueError(f'start_block {start_block} selects no block '
                             f'of {len(feats["attns"])}')
        scores = cls_head(feats['cls_token'])
        b, k = scores.shape
        h, w = feats['grid']
        maps = scores.new_zeros(b, k, h * w)
        todo = range(k) if classes is None else \
            torch.nonzero(classes).flatten().tolist()
        aff = None
        if affinity:
            aff_attns = feats['attns'] if affinity_blocks == 'all' else attns
            aff = sum(a.detach().mean(1)[:, 1:, 1:] for a in aff_attns)
        for i, c in enumerate(todo):
            grads = torch.autograd.grad(
                scores[:, c].sum(), attns, retain_graph=i < len(todo) - 1)
            m = sum(g.relu().mean(1)[:, 0, 1:] for g in grads)  # (B, N)
            if aff is not None:
                m = torch.bmm(aff, m[..., None])[..., 0]
            maps[:, c] = m.relu()
    return maps.detach().view(b, k, h, w)
