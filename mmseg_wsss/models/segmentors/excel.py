from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from mmseg.utils import OptConfigType, SampleList
from torch import Tensor

from ...utils import stack_img_labels, valid_mask_of
from ..backbones.clip_vit import surgery_forward
from ..pseudo_labels.excel import (attribute_text_rows, excel_affinity,
                                   feature_surgery_cams)
from ..pseudo_labels.weclip import (affinity_loss, affinity_targets,
                                    rfm_select)
from .weclip import WeCLIP


def load_attribute_bank(path: str) -> Tensor:
    """The (D, M) attribute centres of an ExCEL bank file: the authors'
    ``[centres (D, M), incidence (K, M)]`` list, or a dict with
    ``centres`` (``tools/clip_text_embeddings.py --attributes``).

    Raises:
        ValueError: naming the file when neither layout is found.
    """
    import os.path as osp

    from mmseg_wsss.utils import safe_torch_load
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'attribute bank {path!r} not found: use the authors\' '
            'pascal_voc_desc_clip_ViT-B-16_gpt4.0_cluster_112_embedding_'
            'bank.pth or build one with tools/clip_text_embeddings.py '
            '--attributes DESCRIPTIONS.json --clusters M')
    bank = safe_torch_load(path, map_location='cpu')
    if isinstance(bank, dict) and 'centres' in bank:
        return bank['centres'].float()
    if isinstance(bank, (list, tuple)) and bank and \
            torch.is_tensor(bank[0]) and bank[0].dim() == 2:
        return bank[0].float()
    raise ValueError(f'{path}: not an attribute bank ([centres (D, M), '
                     'incidence (K, M)] or dict(centres=...))')


@MODELS.register_module()
class ExCEL(WeCLIP):
    """ExCEL (Yang et al., CVPR 2025; ``clip.md`` §4): attribute-enriched
    text, dual-path calibration of CLIP's last blocks, feature-surgery CAMs.

    What differs from :class:`WeCLIP`:

    - text rows: each class row enriched by its softmax-weighted attribute
      centres (:func:`attribute_text_rows`, the 90 % best kept), background
      rows appended;
    - CLIP runs :func:`surgery_forward`: the last ``surgery_blocks`` blocks
      (5, the reference's loop; its comment says 6) are dual-path; after
      ``lvc_start_iter`` a second pass adds the decoder's feature affinity
      to their calibrated attention (LVC);
    - CAMs are patch-text maps by feature surgery (no gradient);
    - refinement attention: the last 6 maps (block 7's head mean, blocks
      8-12's head sums), RFM-selected against the decoder affinity after
      ``rfm_start_iter``; box threshold 0.79;
    - the decoder reads all 12 blocks' original-stream outputs; its
      affinity is ``sigmoid(3 (cos F - mean cos F))``; the affinity
      ("diversity") loss targets the pseudo-labels before
      ``aff_self_iter`` and ``argmax(seg)`` after.

    Args:
        attribute_bank (str): The bank file (:func:`load_attribute_bank`).
        train_cfg (dict): WeCLIP's keys and ``lvc_start_iter`` (14000),
            ``aff_self_iter`` (24000), ``surgery_blocks`` (5),
            ``attr_keep`` (0.9), ``feats_norm`` (``'tokens'``: the
            reference's token-axis normalisation of the surgery features;
            ``'channels'``), ``batch_mean`` (True: the LVC and the decoder
            affinity subtract the batch's mean cosine, as the reference;
            False: each image's).
        Others as :class:`WeCLIP`.

    Example:
        See ``configs/excel/excel_vitb16_voc.py``; in short:

        >>> model = dict(
        ...     type='ExCEL',
        ...     backbone=dict(type='CLIPViT', arch='ViT-B/16',
        ...                   pretrained='pretrain/clip_vitb16.pth'),
        ...     text_embeddings='pretrain/clip_vitb16_text_voc.pth',
        ...     attribute_bank='pretrain/excel_voc_bank_112.pth',
        ...     decode_head=dict(type='WeCLIPHead', in_channels=768,
        ...                      num_levels=12, num_classes=21))
    """

    TRAIN_CFG = dict(rfm_start_iter=14000, lvc_start_iter=14000,
                     aff_self_iter=24000, surgery_blocks=5, attr_keep=0.9,
                     rfm_last=6, box_thr=0.79, feats_norm='tokens',
                     batch_mean=True)

    def __init__(self,
                 backbone: dict,
                 text_embeddings: str,
                 attribute_bank: str,
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
        centres = load_attribute_bank(attribute_bank)
        if centres.shape[0] != self.fg_text.shape[1]:
            raise ValueError(
                f'{attribute_bank}: centres are {centres.shape[0]}-d, the '
                f'text rows {self.fg_text.shape[1]}-d (another CLIP?)')
        rows = attribute_text_rows(self.fg_text, self.bg_text, centres,
                                   self.train_cfg['attr_keep'])
        self.register_buffer('text_rows', rows, persistent=False)

    def surgery(self, inputs: Tensor, ex_feats: Optional[Tensor] = None):
        with torch.no_grad():
            cfg = self.train_cfg
            return surgery_forward(self.backbone, inputs,
                                   int(cfg['surgery_blocks']), ex_feats,
                                   cfg['feats_norm'], cfg['batch_mean'])

    def forward_maps(self, inputs: Tensor) -> Dict[str, Tensor]:
        out = self.surgery(inputs)
        return dict(seg=self.decode_head(out['levels']))

    def excel_label(self, img: Tensor, clip: dict, cams: Tensor, i: int,
                    present: List[int], aff: Tensor, size) -> Tensor:
        """(H, W) pseudo-label of image ``i`` (keys 0 / k + 1)."""
        cfg = self.train_cfg
        h, w = size
        if not present:
            return img.new_zeros(h, w, dtype=torch.long)
        gh, gw = clip['grid']
        maps = cams[i][:, present].t().reshape(len(present), gh, gw)
        attns = [a[i, 1:, 1:] for a in clip['attns']][-int(cfg['rfm_last']):]
        if self.clock() >= cfg['rfm_start_iter']:
            att, _ = rfm_select(attns, aff, len(attns), cfg['rfm_signed'])
        else:
            att = torch.stack(attns).mean(0)
        return self.maps_to_label(img, maps, att, present, size)

    def loss(self, inputs, data_samples: SampleList) -> dict:
        """One ExCEL iteration (see the class docstring)."""
        if isinstance(inputs, dict):
            inputs = inputs.get('weak', next(iter(inputs.values())))
        cfg = self.train_cfg
        labels = stack_img_labels(data_samples, self.num_classes)
        self.forward_calls += 1
        it = self.clock()
        clip = self.surgery(inputs)
        logits, feat = self.decode_head.forward_with_features(
            clip['levels'])
        aff = excel_affinity(feat, cfg['batch_mean'])
        if it >= cfg['lvc_start_iter']:  # learned calibration: 2nd pass
            clip = dict(self.surgery(inputs, feat.detach()),
                        levels=clip['levels'])
        cams = feature_surgery_cams(clip['feats'],
                                    self.text_rows.to(clip['feats']),
                                    self.num_classes)
        size = inputs.shape[-2:]
        pl = torch.stack([
            self.excel_label(inputs[i], clip, cams, i,
                             labels[i].nonzero().flatten().tolist(),
                             aff[i].detach(), size)
            for i in range(inputs.shape[0])
        ])
        valid = valid_mask_of(data_samples, size, inputs.device)
        pl[~valid] = 255
        losses = self.decode_loss(logits, pl)
        aff_target = pl
        if it >= cfg['aff_self_iter']:
            aff_target = F.interpolate(logits.detach(), size=size,
                                       mode='bilinear',
                                       align_corners=False).argmax(1)
            aff_target[~valid] = 255
        target = affinity_targets(aff_target, clip['grid'],
                                  int(cfg['aff_radius']))
        losses['loss_aff'] = float(cfg['aff_weight']) * affinity_loss(
            aff, target)
        return losses
