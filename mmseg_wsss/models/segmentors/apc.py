from typing import Dict, Optional

import torch.nn.functional as F
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, SampleList
from torch import Tensor

from ...utils import get_current_iter, stack_img_labels, valid_mask_of
from ..backbones import build_wsss_backbone
from ..pseudo_labels import label_merge, par_refine
from .base import (WSSSBaseSegmentor, stock_model_keys,
                   wsss_data_preprocessor)


@MODELS.register_module()
class APC(WSSSBaseSegmentor):
    """Adaptive Patch Contrast (``methods.md`` §3): a CAM-free, single-stage
    patch classifier.

    ViT -> :class:`PatchClassifierHead` (optional HV-BiLSTM, bias-free
    linear to K+1, per-patch softmax P, adaptive-K pooling) trained with BCE
    over K+1 classes (background always present) and the classifier L2;
    :class:`PatchContrastiveLoss` on the refined patch embeddings; a decode
    head (e.g. mmseg's all-MLP ``SegformerHead`` on several ViT blocks)
    trained with its ``loss_decode`` on the label-merged patch pseudo-labels
    (:func:`label_merge`, each patch's class copied to its pixels; crop
    padding ignored).

    Prediction: ``cams`` are the patch foreground probabilities P[1:]
    (min-max normalised: the CAM protocol's background sweep),
    ``pseudo_scores`` P with each class divided by its peak (the label
    merge: argmax over the background and the present classes is APC's
    pseudo-mask, ``PseudoMaskMetric``'s ``own_mIoU``), ``seg_logits`` the
    decoder's (or, without a decoder, P itself).

    Args:
        backbone (dict): A :class:`WSSSViT` (its ``out_indices`` feed the
            decode head).
        patch_head (dict): A :class:`PatchClassifierHead`.
        decode_head (dict, optional): Any mmseg decode head with K+1
            classes.
        loss_pcl (dict, optional): :class:`PatchContrastiveLoss`; None
            turns PCL off.
        train_cfg (dict): ``seg_start_iter`` (iterations before the decoder
            trains; default 0); ``par`` (None, or :func:`par_refine`
            keyword arguments: refine the label-merged patch scores on the
            image downsampled x2 before the argmax); ``feat_refine`` (None;
            True or a dict of :func:`feat_refine_args`: propagate the
            label-merged patch scores, background included, over the
            affinity of the same forward's tokens before the argmax / PAR).
        test_cfg (dict): See :class:`WSSSBaseSegmentor`.
        regularizers (list[dict], optional): e.g. ``[dict(type='ACRLoss')]``.

    Example:
        See ``configs/apc/apc_vitb_voc.py``; in short:

        >>> model = dict(
        ...     type='APC', backbone=dict(type='WSSSViT'),
        ...     patch_head=dict(type='PatchClassifierHead', in_channels=768,
        ...                     num_classes=20),
        ...     decode_head=dict(type='SegformerHead', in_channels=[768] * 4,
        ...                      in_index=[0, 1, 2, 3], channels=256,
        ...                      num_classes=21))
    """

    TRAIN_CFG = dict(seg_start_iter=0, par=None, feat_refine=None)

    def __init__(self,
                 backbone: ConfigType,
                 patch_head: ConfigType,
                 decode_head: OptConfigType = None,
                 loss_pcl: OptConfigType = dict(type='PatchContrastiveLoss'),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg=None,
                 regularizers: Optional[list] = None,
                 pretrained: Optional[str] = None,
                 auxiliary_head: OptConfigType = None,
                 neck: OptConfigType = None):
        super().__init__(
            data_preprocessor=wsss_data_preprocessor(data_preprocessor),
            init_cfg=init_cfg)
        backbone = stock_model_keys(type(self).__name__, backbone,
                                    pretrained, auxiliary_head, neck)
        self.backbone = build_wsss_backbone(backbone)
        self.patch_size = self.backbone.wsss_stride
        self.patch_head = MODELS.build(
            self.head_with_channels(patch_head, 'patch_head', 'cam'))
        self.num_classes = self.patch_head.num_classes
        self.build_decode_head(decode_head)
        self.loss_pcl = MODELS.build(loss_pcl) if loss_pcl else None
        self.setup_cfgs(train_cfg, test_cfg)
        self.build_regularizers(regularizers)
        self.check_backbone_needs()

    def forward_maps(self, inputs: Tensor) -> Dict[str, Tensor]:
        feats = self.backbone.forward_wsss(inputs)
        probs, _ = self.patch_head(feats['tokens'])
        maps = dict(cam=probs[:, 1:], pseudo=probs)
        maps['seg'] = self.decode_head(feats['outs']) \
            if self.decode_head is not None else probs
        return maps

    def classification_losses(self, feats: dict,
                              img_labels: Tensor) -> Dict[str, Tensor]:
        """The patch classifier's image-level loss (per-patch softmax,
        pooling, BCE over K+1) of a backbone forward."""
        probs, _ = self.patch_head(feats['tokens'])
        return self.patch_head.loss(probs, img_labels)

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """One APC iteration, step by step."""
        if isinstance(inputs, dict):
            inputs = inputs['weak']
        img_labels = stack_img_labels(data_samples, self.num_classes)
        feats = self.online_forward(inputs)

        # 1. patch classification: per-patch softmax, AKP, BCE over K+1
        probs, emb = self.patch_head(feats['tokens'])
        losses = self.patch_head.loss(probs, img_labels)
        # 2. patch contrast on the refined embeddings
        if self.loss_pcl is not None:
            presence = F.pad(img_labels, (1, 0), value=1.0)
            losses[self.loss_pcl.loss_name] = self.loss_pcl(
                emb, probs, presence)
        losses.update(self.regularizer_losses(inputs, feats, img_labels))

        # 3. single-stage segmentation on the label-merged patch labels
        if self.decode_head is None or \
                get_current_iter() < self.train_cfg['seg_start_iter']:
            return losses
        pseudo = self.patch_pseudo_label(inputs, probs.detach(), img_labels,
                                         tokens=feats['tokens'])
        valid = valid_mask_of(data_samples, inputs.shape[-2:], inputs.device)
        pseudo[~valid] = 255
        losses.update(self.decode_loss(self.decode_head(feats['outs']),
                                       pseudo))
        losses['pl_fg_ratio'] = ((pseudo > 0) & (pseudo != 255)).float().mean()
        return losses

    def patch_pseudo_label(self,
                           inputs: Tensor,
                           probs: Tensor,
                           img_labels: Tensor,
                           tokens: Optional[Tensor] = None) -> Tensor:
        """(B, H, W) pixel labels: label-merged patch classes copied to
        their pixels, or, with ``train_cfg.par``, the label-merged scores
        upsampled to half the image size, PAR-refined, argmax-ed and
        upsampled (nearest). With ``train_cfg.feat_refine`` the label-merged
        scores are first propagated over the affinity of ``tokens`` (the
        patch grid of ``probs``; a scale-1 forward when None)."""
        size = inputs.shape[-2:]
        scores = label_merge(probs, img_labels, True)
        if self.train_cfg.get('feat_refine'):
            keep = F.pad(img_labels, (1, 0), value=1.0)
            scores = self.refine_by_features(
                scores, inputs, self.train_cfg['feat_refine'],
                feats=tokens, present=keep)
        if self.train_cfg.get('par') is None:  # {} = PAR defaults
            label = scores.argmax(dim=1)
            return F.interpolate(label[:, None].float(), size=size,
                                 mode='nearest')[:, 0].long()
        half = (size[0] // 2, size[1] // 2)
        scores = F.interpolate(scores, size=half, mode='bilinear',
                               align_corners=False)
        img = F.interpolate(inputs, size=half, mode='bilinear',
                            align_corners=False)
        label = par_refine(img, scores, **self.train_cfg['par']).argmax(1)
        return F.interpolate(label[:, None].float(), size=size,
                             mode='nearest')[:, 0].long()
