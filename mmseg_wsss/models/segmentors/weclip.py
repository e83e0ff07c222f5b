from typing import Dict, List

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from mmseg.utils import OptConfigType, SampleList
from torch import Tensor

from ...utils import get_current_iter, stack_img_labels, valid_mask_of
from ..pseudo_labels import par_refine
from ..pseudo_labels.clip_es import (box_mask, caa_refine, clip_cam_fns,
                                     minmax01, sinkhorn_affinity,
                                     softmax_gradcam)
from ..pseudo_labels.weclip import (affinity_loss, affinity_targets,
                                    rfm_select)
from .base import WSSSBaseSegmentor, wsss_data_preprocessor
from .clip_es import FrozenCLIPMixin


@MODELS.register_module()
class WeCLIP(FrozenCLIPMixin, WSSSBaseSegmentor):
    """WeCLIP: frozen CLIP + a light decoder, single stage (Zhang et al.,
    CVPR 2024; ``clip.md`` §2).

    One iteration, step by step:

    1. the frozen CLIP runs once (no grad): each block's output tokens
       (the decoder's levels) and head-averaged attention;
    2. the decoder (:class:`WeCLIPHead`) gives segmentation logits and its
       fused features ``F``; the decoder affinity ``A_seg = sigmoid(F^T F)``;
    3. per image, CLIP-ES pseudo-labels of the crop from its image-level
       labels: softmax-GradCAM of the present classes; the attention that
       refines them is the mean of the last ``caa_blocks`` blocks before
       ``rfm_start_iter`` and the refinement module's choice
       (:func:`rfm_select`) after it; boxes, Sinkhorn affinity, background
       ``(1 - max)^bg_power``, PAR, argmax;
    4. ``loss_seg``: the decode head's loss (fg/bg-balanced CE) on them;
       ``loss_aff``: the affinity loss of ``A_seg`` against the pairs of the
       pseudo-label (radius ``aff_radius``), times ``aff_weight``.

    Args:
        backbone (dict): A :class:`CLIPViT` (frozen here) whose
            ``out_indices`` are the decoder's levels (WeCLIP: blocks 0-10).
        text_embeddings (str): ``tools/clip_text_embeddings.py`` output.
        decode_head (dict): A :class:`WeCLIPHead`.
        train_cfg (dict): ``rfm_start_iter`` (15000), ``rfm_last`` (6 VOC,
            10 COCO), ``rfm_signed`` (True: the reference's signed layer
            difference; False: the paper's absolute distance),
            ``caa_blocks`` (8), ``box_thr`` (0.4 VOC, 0.7 COCO),
            ``box_last_rule`` (True), ``bg_power`` (1.0), ``logit_scale``
            (100), ``par`` (dict of :func:`par_refine` arguments, None
            off), ``aff_radius`` (8), ``aff_weight`` (0.1),
            ``cam_input_block`` (-1: GradCAM's last block reads the output
            of the block before it, as WeCLIP; -2 reads one block earlier,
            WeCLIP+'s quirk), ``start_clock`` (``'iter'``: the start
            iterations count training iterations; ``'forward'``: forward
            calls, validation ones included, as the reference counts).
        test_cfg (dict): As :class:`WSSSBaseSegmentor` (``scales``,
            ``flip``, ``crf``).

    Example:
        See ``configs/weclip/weclip_vitb16_voc.py``; in short:

        >>> model = dict(
        ...     type='WeCLIP',
        ...     backbone=dict(type='CLIPViT', arch='ViT-B/16',
        ...                   pretrained='pretrain/clip_vitb16.pth'),
        ...     text_embeddings='pretrain/clip_vitb16_text_voc.pth',
        ...     decode_head=dict(type='WeCLIPHead', in_channels=768,
        ...                      num_levels=11, num_classes=21))
    """

    TRAIN_CFG = dict(rfm_start_iter=15000, rfm_last=6, rfm_signed=True,
                     caa_blocks=8, box_thr=0.4, box_last_rule=True,
                     bg_power=1.0, logit_scale=100.0,
                     par=dict(num_iter=20, w1=0.3, w2=0.01),
                     aff_radius=8, aff_weight=0.1, cam_input_block=-1,
                     start_clock='iter')

    def __init__(self,
                 backbone: dict,
                 text_embeddings: str,
                 decode_head: dict,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg=None):
        super().__init__(
            data_preprocessor=wsss_data_preprocessor(data_preprocessor),
            init_cfg=init_cfg)
        self.setup_frozen_clip(backbone, text_embeddings)
        self.build_decode_head(decode_head)
        self.setup_cfgs(train_cfg, test_cfg)
        if self.train_cfg['start_clock'] not in ('iter', 'forward'):
            raise ValueError("train_cfg.start_clock must be 'iter' or "
                             f"'forward', got {self.train_cfg['start_clock']}")
        # forward calls (training and validation), for start_clock='forward'
        self.register_buffer('forward_calls',
                             torch.zeros((), dtype=torch.long))

    def clock(self) -> int:
        """What the start iterations are compared with (``start_clock``)."""
        if self.train_cfg['start_clock'] == 'forward':
            return int(self.forward_calls)
        return get_current_iter()

    def predict(self, inputs, data_samples=None):
        self.forward_calls += 1
        return super().predict(inputs, data_samples)

    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.eval()  # frozen CLIP
        return self

    # ------------------------------------------------------------ CLIP
    def clip_pass(self, inputs: Tensor) -> dict:
        """One no-grad CLIP pass: the decoder's levels (the blocks of
        ``out_indices``), every block's head-averaged attention and the
        tokens entering each block."""
        bb = self.backbone
        with torch.no_grad():
            x, grid = bb._embed(inputs)
            ins, attns, levels = [], [], []
            for i, blk in enumerate(bb.blocks):
                ins.append(x)
                x, attn = blk(x, with_attn=True)
                attns.append(attn.mean(1))
                if i in bb.out_indices:
                    levels.append(bb._to_map(x, grid))
        return dict(levels=levels, attns=attns, ins=ins, grid=grid)

    def forward_maps(self, inputs: Tensor) -> Dict[str, Tensor]:
        clip = self.clip_pass(inputs)
        return dict(seg=self.decode_head(clip['levels']))

    # ------------------------------------------------------------ labels
    def pseudo_label(self, img: Tensor, clip: dict, i: int,
                     present: List[int], aff_seg: Tensor,
                     size) -> Tensor:
        """(H, W) pseudo-label of image ``i`` of the batch (class keys: 0
        background, k + 1 class k)."""
        cfg = self.train_cfg
        grid = clip['grid']
        h, w = size
        if not present:
            return img.new_zeros(h, w, dtype=torch.long)
        tokens = clip['ins'][len(self.backbone.blocks) - 1 +
                             cfg['cam_input_block'] + 1][i:i + 1]
        text = torch.cat([self.fg_text[present], self.bg_text], 0).to(tokens)
        last_block, norm1, head = clip_cam_fns(self.backbone)
        cams = softmax_gradcam(last_block, tokens, norm1, head, text,
                               list(range(len(present))), grid,
                               float(cfg['logit_scale']))
        attns = [a[i, 1:, 1:] for a in clip['attns']]
        if self.clock() >= cfg['rfm_start_iter']:
            att, _ = rfm_select(attns, aff_seg, cfg['rfm_last'],
                                cfg['rfm_signed'])
        else:
            att = torch.stack(attns[-int(cfg['caa_blocks']):]).mean(0)
        return self.maps_to_label(img, cams, att, present, size)

    def maps_to_label(self, img: Tensor, cams: Tensor, att: Tensor,
                      present: List[int], size,
                      boxes: bool = True) -> Tensor:
        """The shared tail of the CLIP methods' pseudo-labels: each (h, w)
        map of ``cams`` propagated over the Sinkhorn affinity of ``att``
        inside its boxes (the whole map with ``boxes=False``), min-max
        scaled, resized to ``size``; background ``(1 - max)^bg_power``;
        PAR on the image; argmax to class keys (0, k + 1)."""
        cfg = self.train_cfg
        h, w = size
        trans = sinkhorn_affinity(att)
        cams = torch.stack([
            caa_refine(c, trans,
                       box_mask(c, cfg['box_thr'], cfg['box_last_rule'])
                       if boxes else torch.ones_like(c)) for c in cams
        ])
        cams = minmax01(F.interpolate(cams[None], size=(h, w),
                                      mode='bilinear',
                                      align_corners=False)[0])
        bg = (1 - cams.max(0, keepdim=True)[0]).clamp(min=0) \
            ** float(cfg['bg_power'])
        scores = torch.cat([bg, cams], 0)[None]
        if cfg.get('par'):
            small = F.interpolate(img[None], scale_factor=0.5,
                                  mode='bilinear', align_corners=False)
            s = F.interpolate(scores, size=small.shape[-2:],
                              mode='bilinear', align_corners=False)
            scores = F.interpolate(par_refine(small, s, **cfg['par']),
                                   size=(h, w), mode='bilinear',
                                   align_corners=False)
        keys = torch.tensor([0] + [k + 1 for k in present],
                            device=img.device)
        return keys[scores[0].argmax(0)]

    # ------------------------------------------------------------ training
    def loss(self, inputs, data_samples: SampleList) -> dict:
        """One WeCLIP iteration (see the class docstring)."""
        if isinstance(inputs, dict):
            inputs = inputs.get('weak', next(iter(inputs.values())))
        cfg = self.train_cfg
        self.forward_calls += 1
        labels = stack_img_labels(data_samples, self.num_classes)
        # 1. frozen CLIP
        clip = self.clip_pass(inputs)
        # 2. decoder and its affinity
        logits, feat = self.decode_head.forward_with_features(
            clip['levels'])
        f = feat.flatten(2)
        aff_seg = torch.sigmoid(f.transpose(1, 2) @ f)     # (B, N, N)
        # 3. online CLIP-ES pseudo-labels from the image-level labels
        size = inputs.shape[-2:]
        valid = valid_mask_of(data_samples, size, inputs.device)
        pl = torch.stack([
            self.pseudo_label(inputs[i], clip, i,
                              labels[i].nonzero().flatten().tolist(),
                              aff_seg[i], size)
            for i in range(inputs.shape[0])
        ])
        pl[~valid] = 255  # crop padding
        # 4. losses
        losses = self.decode_loss(logits, pl)
        target = affinity_targets(pl, clip['grid'], int(cfg['aff_radius']))
        losses['loss_aff'] = float(cfg['aff_weight']) * affinity_loss(
            aff_seg, target)
        return losses
