from typing import List, Sequence

import torch
import torch.nn as nn
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor

from ..backbones.clip_vit import QuickGELU


class _DecoderBlock(nn.Module):
    """Pre-LN transformer block (QuickGELU MLP), no position embedding."""

    def __init__(self, dims: int, heads: int, mlp: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dims)
        self.attn = nn.MultiheadAttention(dims, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(dims)
        self.mlp = nn.Sequential(nn.Linear(dims, mlp), QuickGELU(),
                                 nn.Linear(mlp, dims))

    def forward(self, x: Tensor) -> Tensor:
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


@MODELS.register_module()
class WeCLIPHead(BaseDecodeHead):
    """WeCLIP's decoder on frozen CLIP features (``clip.md`` §2.1).

    Per level a token-wise MLP (``in_channels -> channels``, ReLU,
    ``channels -> channels``); the levels concatenated, a 1x1 conv to
    ``channels`` and Dropout2d give the fused map ``F`` (its affinity
    ``sigmoid(F^T F)`` is the decoder affinity of the refinement module and
    the affinity loss); ``num_layers`` pre-LN transformer blocks on its
    tokens and a 1x1 conv give the logits.

    Args:
        in_channels (int): Width of each level (768 for ViT-B/16).
        num_levels (int): Levels read (WeCLIP: the outputs of blocks 1-11).
        channels (int): 256.
        num_layers (int): Transformer blocks (3).
        num_heads (int): 8. mlp_dims (int): 1024.
        num_classes (int): K + 1 (background first).
        dropout (float): Dropout2d after the fusion (0.1).
        loss_decode (dict | list[dict]): Loss(es) on the pseudo-labels,
            e.g. ``dict(type='BalancedCrossEntropyLoss', loss_name=
            'loss_seg')``.

    An mmseg decode head (``conv_seg`` is the classifier): it also trains
    with mmseg's ``EncoderDecoder`` on masks (the supervised reference of
    ``tools/benchmark.py``).

    Example:
        >>> head = dict(type='WeCLIPHead', in_channels=768, num_levels=11,
        ...             num_classes=21)
    """

    def __init__(self,
                 in_channels: int = 768,
                 num_levels: int = 11,
                 channels: int = 256,
                 num_layers: int = 3,
                 num_heads: int = 8,
                 mlp_dims: int = 1024,
                 num_classes: int = 21,
                 dropout: float = 0.1,
                 loss_decode=dict(type='BalancedCrossEntropyLoss',
                                  loss_name='loss_seg'),
                 ignore_index: int = 255,
                 align_corners: bool = False):
        super().__init__(
            in_channels=in_channels, channels=channels,
            num_classes=num_classes, dropout_ratio=0.0,
            loss_decode=loss_decode, ignore_index=ignore_index,
            align_corners=align_corners)
        self.num_levels = num_levels
        self.level_mlps = nn.ModuleList([
            nn.Sequential(nn.Linear(in_channels, channels), nn.ReLU(True),
                          nn.Linear(channels, channels))
            for _ in range(num_levels)
        ])
        self.fuse = nn.Conv2d(channels * num_levels, channels, 1)
        self.dropout = nn.Dropout2d(dropout)
        self.blocks = nn.ModuleList([
            _DecoderBlock(channels, num_heads, mlp_dims)
            for _ in range(num_layers)
        ])

    def fuse_levels(self, levels: Sequence[Tensor]) -> Tensor:
        """The fused map ``F`` (B, channels, h, w) of the levels."""
        levels = list(levels)[-self.num_levels:]
        if len(levels) != self.num_levels:
            raise ValueError(f'WeCLIPHead reads {self.num_levels} levels, '
                             f'got {len(levels)}: set the backbone\'s '
                             'out_indices to that many blocks')
        b, _, h, w = levels[0].shape
        maps: List[Tensor] = []
        for mlp, x in zip(self.level_mlps, levels):
            t = mlp(x.flatten(2).transpose(1, 2))      # (B, N, channels)
            maps.append(t.transpose(1, 2).reshape(b, -1, h, w))
        return self.dropout(self.fuse(torch.cat(maps, 1)))

    def decode(self, feat: Tensor) -> Tensor:
        """Transformer blocks and classifier on a fused map."""
        b, _, h, w = feat.shape
        x = feat.flatten(2).transpose(1, 2)
        for blk in self.blocks:
            x = blk(x)
        return self.conv_seg(x.transpose(1, 2).reshape(b, -1, h, w))

    def forward_with_features(self, levels: Sequence[Tensor]):
        """(logits (B, K+1, h, w), fused F (B, channels, h, w))."""
        feat = self.fuse_levels(levels)
        return self.decode(feat), feat

    def forward(self, levels: Sequence[Tensor]) -> Tensor:
        return self.forward_with_features(levels)[0]


@MODELS.register_module()
class WeCLIPPlusHead(nn.Module):
    """WeCLIP+'s decoder (``clip.md`` §3): a fusion front-end for the CLIP
    levels and one for the DINOv2 map (token-wise MLP, 1x1 conv, Dropout2d
    each), and one **shared** stack of transformer blocks and classifier
    applied to each. Returns both predictions and both fused maps.

    Args:
        clip_channels (int): 768 (ViT-B/16). clip_levels (int): 1 (WeCLIP+
            reads block 11 only).
        dino_channels (int): 384 (ViT-S/14), 768 (B/14), 1024 (L/14).
        Others as :class:`WeCLIPHead` (``num_layers`` 3; 5 for a ViT-L
        DINOv2).

    Example:
        >>> decode_head = dict(type='WeCLIPPlusHead', clip_channels=768,
        ...                    clip_levels=1, dino_channels=384,
        ...                    num_classes=21)
    """

    def __init__(self,
                 clip_channels: int = 768,
                 clip_levels: int = 1,
                 dino_channels: int = 384,
                 channels: int = 256,
                 num_layers: int = 3,
                 num_heads: int = 8,
                 mlp_dims: int = 1024,
                 num_classes: int = 21,
                 dropout: float = 0.1,
                 loss_decode=dict(type='BalancedCrossEntropyLoss',
                                  loss_name='loss_seg'),
                 ignore_index: int = 255,
                 align_corners: bool = False):
        super().__init__()
        self.clip = WeCLIPHead(clip_channels, clip_levels, channels,
                               num_layers, num_heads, mlp_dims, num_classes,
                               dropout, loss_decode, ignore_index,
                               align_corners)
        self.dino_mlp = nn.Sequential(
            nn.Linear(dino_channels, channels), nn.ReLU(True),
            nn.Linear(channels, channels))
        self.dino_fuse = nn.Conv2d(channels, channels, 1)
        self.dino_dropout = nn.Dropout2d(dropout)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.align_corners = align_corners
        self.loss_decode = self.clip.loss_decode

    def forward_both(self, clip_levels: Sequence[Tensor], dino: Tensor):
        """(seg_clip, seg_dino, F_clip, F_dino); ``dino`` (B, C, h', w') is
        resized (bilinear) to the CLIP grid first."""
        f_clip = self.clip.fuse_levels(clip_levels)
        h, w = f_clip.shape[-2:]
        dino = nn.functional.interpolate(dino, size=(h, w), mode='bilinear',
                                         align_corners=False)
        b = dino.shape[0]
        t = self.dino_mlp(dino.flatten(2).transpose(1, 2))
        f_dino = self.dino_dropout(
            self.dino_fuse(t.transpose(1, 2).reshape(b, -1, h, w)))
        # one transformer stack and classifier, shared by both branches
        return (self.clip.decode(f_clip), self.clip.decode(f_dino), f_clip,
                f_dino)
