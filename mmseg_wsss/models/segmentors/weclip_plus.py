from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from mmseg.utils import OptConfigType, SampleList
from torch import Tensor

from ...utils import stack_img_labels, valid_mask_of
from ..backbones import build_wsss_backbone
from ..losses.balanced_ce_loss import balanced_cross_entropy
from ..losses.dice_loss import weclip_dice_loss
from ..pseudo_labels.clip_es import clip_cam_fns, softmax_gradcam
from ..pseudo_labels.weclip import (affinity_loss, affinity_targets,
                                    rfm_select)
from .weclip import WeCLIP


@MODELS.register_module()
class WeCLIPPlus(WeCLIP):
    """WeCLIP+ ("Frozen CLIP-DINO"; Zhang et al., TPAMI 2025; ``clip.md`` §3):
    WeCLIP with a frozen DINOv2 beside CLIP.

    What it adds to :class:`WeCLIP`:

    - a frozen DINOv2 (any :class:`WSSSViT` DINOv2 config; our DINOv2
      loading) sees the same normalised crop resized to multiples of its
      patch; its final normed patch tokens feed a second fusion front-end
      of :class:`WeCLIPPlusHead`, whose transformer stack and classifier
      are **shared** with the CLIP branch; ``seg = (seg_clip + seg_dino) /
      2``; the decoder affinity is ``sigmoid(F^T F)`` of the two fused maps
      concatenated;
    - RFM+ from the first iteration: the CAM to refine is multiplied by the
      detached ``softmax(seg)`` of its class, and its box is the whole map
      (``box_with_prior=False`` keeps the box);
    - losses: balanced CE of ``seg`` + ``aff_weight`` x affinity +
      ``cross_weight`` x (balanced CE of each branch against the other's
      argmax) + Dice of ``seg``; after ``self_label_iter`` the pixels where
      ``max softmax(seg) > self_label_thr`` take ``seg``'s prediction as
      their pseudo-label.

    Args:
        dino (dict): A :class:`WSSSViT` DINOv2 config (frozen here).
        Others as :class:`WeCLIP`; ``decode_head`` is a
        :class:`WeCLIPPlusHead`.
        train_cfg (dict): WeCLIP's keys (``cam_input_block`` defaults to
            -2 here: the reference feeds block 10's output to block 12, a
            quirk of its code; -1 is WeCLIP's) plus ``cross_weight`` (0.1),
            ``dice_weight`` (1.0), ``self_label_iter`` (18000),
            ``self_label_thr`` (0.75), ``box_with_prior`` (False).

    Example:
        See ``configs/weclip_plus/weclip-plus_vitb16-dinov2s_voc.py``; the
        WeCLIP model plus a DINOv2 branch:

        >>> model = dict(
        ...     type='WeCLIPPlus',
        ...     dino=dict(type='WSSSViT', img_size=518, patch_size=14,
        ...               embed_dims=384, num_layers=12, num_heads=6,
        ...               pretrained='pretrain/dinov2_vits14_timm.pth'),
        ...     decode_head=dict(type='WeCLIPPlusHead', clip_channels=768,
        ...                      dino_channels=384, num_classes=21))
    """

    TRAIN_CFG = dict(rfm_start_iter=0, cam_input_block=-2, cross_weight=0.1,
                     dice_weight=1.0, self_label_iter=18000,
                     self_label_thr=0.75, box_with_prior=False)

    def __init__(self,
                 backbone: dict,
                 dino: dict,
                 text_embeddings: str,
                 decode_head: dict,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg=None):
        super().__init__(backbone=backbone, text_embeddings=text_embeddings,
                         decode_head=decode_head, train_cfg=train_cfg,
                         test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.dino = build_wsss_backbone(dino)
        for p in self.dino.parameters():
            p.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self.dino.eval()
        return self

    def dino_map(self, inputs: Tensor) -> Tensor:
        """(B, C, h', w') DINOv2's final normed patch tokens of the crop,
        resized to multiples of its patch size."""
        p = self.dino.wsss_stride
        h, w = inputs.shape[-2:]
        size = (max(p, h // p * p), max(p, w // p * p))
        x = inputs if size == (h, w) else F.interpolate(
            inputs, size=size, mode='bilinear', align_corners=False)
        with torch.no_grad():
            return self.dino.forward_wsss(x)['tokens']

    def predictions(self, inputs: Tensor, clip: Optional[dict] = None):
        clip = clip or self.clip_pass(inputs)
        seg_c, seg_d, f_c, f_d = self.decode_head.forward_both(
            clip['levels'], self.dino_map(inputs))
        return clip, seg_c, seg_d, torch.cat([f_c, f_d], 1)

    def forward_maps(self, inputs: Tensor) -> Dict[str, Tensor]:
        _, seg_c, seg_d, _ = self.predictions(inputs)
        return dict(seg=0.5 * (seg_c + seg_d))

    # ------------------------------------------------------------ labels
    def pseudo_label_plus(self, img: Tensor, clip: dict, i: int,
                          present: List[int], aff_seg: Tensor,
                          prior: Tensor, size) -> Tensor:
        """WeCLIP's pseudo-label with RFM+ (see the class docstring);
        ``prior`` (K+1, h, w) is the detached softmax of ``seg``."""
        cfg = self.train_cfg
        h, w = size
        if not present:
            return img.new_zeros(h, w, dtype=torch.long)
        grid = clip['grid']
        tokens = clip['ins'][len(self.backbone.blocks) - 1 +
                             cfg['cam_input_block'] + 1][i:i + 1]
        text = torch.cat([self.fg_text[present], self.bg_text], 0).to(tokens)
        last_block, norm1, head = clip_cam_fns(self.backbone)
        cams = softmax_gradcam(last_block, tokens, norm1, head, text,
                               list(range(len(present))), grid,
                               float(cfg['logit_scale']))
        cams = cams * prior[[k + 1 for k in present]]
        attns = [a[i, 1:, 1:] for a in clip['attns']]
        att, _ = rfm_select(attns, aff_seg, cfg['rfm_last'],
                            cfg['rfm_signed'])
        return self.maps_to_label(img, cams, att, present, size,
                                  boxes=cfg['box_with_prior'])

    # ------------------------------------------------------------ training
    def loss(self, inputs, data_samples: SampleList) -> dict:
        """One WeCLIP+ iteration (see the class docstring)."""
        if isinstance(inputs, dict):
            inputs = inputs.get('weak', next(iter(inputs.values())))
        cfg = self.train_cfg
        self.forward_calls += 1
        labels = stack_img_labels(data_samples, self.num_classes)
        # 1. frozen CLIP and DINOv2, shared decoder on both
        clip, seg_c, seg_d, feat = self.predictions(inputs)
        seg = 0.5 * (seg_c + seg_d)
        f = feat.flatten(2)
        aff_seg = torch.sigmoid(f.transpose(1, 2) @ f)
        # 2. pseudo-labels with RFM+ (the seg prior, no boxes)
        size = inputs.shape[-2:]
        prior = seg.detach().softmax(1)
        pl = torch.stack([
            self.pseudo_label_plus(inputs[i], clip, i,
                                   labels[i].nonzero().flatten().tolist(),
                                   aff_seg[i], prior[i], size)
            for i in range(inputs.shape[0])
        ])
        up = F.interpolate(seg, size=size, mode='bilinear',
                           align_corners=False)
        if self.clock() >= cfg['self_label_iter']:
            conf, pred = up.detach().softmax(1).max(1)
            sure = conf > cfg['self_label_thr']
            pl[sure] = pred[sure]
        valid = valid_mask_of(data_samples, size, inputs.device)
        pl[~valid] = 255
        # 3. losses
        losses = self.decode_loss(seg, pl)
        target = affinity_targets(pl, clip['grid'], int(cfg['aff_radius']))
        losses['loss_aff'] = float(cfg['aff_weight']) * affinity_loss(
            aff_seg, target)
        up_c = F.interpolate(seg_c, size=size, mode='bilinear',
                             align_corners=False)
        up_d = F.interpolate(seg_d, size=size, mode='bilinear',
                             align_corners=False)
        tc, td = up_c.detach().argmax(1), up_d.detach().argmax(1)
        tc[~valid], td[~valid] = 255, 255
        losses['loss_cross'] = float(cfg['cross_weight']) * (
            balanced_cross_entropy(up_c, td) +
            balanced_cross_entropy(up_d, tc))
        losses['loss_dice'] = float(cfg['dice_weight']) * \
            weclip_dice_loss(up, pl)
        return losses
