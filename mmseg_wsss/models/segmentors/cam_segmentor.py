from typing import Dict, Optional

import torch
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, SampleList
from torch import Tensor

from ...utils import get_current_iter, stack_img_labels, valid_mask_of
from ..backbones import build_wsss_backbone, preserve_bn_stats
from ..pseudo_labels import (cam_to_label, class_token_gradient_map,
                             normalize_cam)
from .base import (WSSSBaseSegmentor, stock_model_keys,
                   wsss_data_preprocessor)


@MODELS.register_module()
class CAMSegmentor(WSSSBaseSegmentor):
    """Single-stage CAM baseline: the "no swapping" model CoSA is measured
    against.

    One network (ViT + CAM head + optional aux CAM head + optional decode
    head). Every iteration trains the classifiers with image labels. After
    ``train_cfg.warmup_iters`` classification-only iterations, the network's
    own multi-scale CAM (no grad, ``methods.md`` §1.3) is turned into a
    two-threshold pseudo-label (§1.4) that supervises the decode head with
    the balanced cross-entropy (§1.5).

    Args:
        backbone (dict): A :class:`WSSSViT` config.
        cam_head (dict): A :class:`CAMHead` config on the final tokens.
        aux_cam_head (dict, optional): A :class:`CAMHead` on the aux tokens;
            its loss is logged as ``loss_cls_aux``.
        decode_head (dict, optional): Any mmseg decode head with
            ``num_classes = K + 1``; its ``loss_decode`` (e.g.
            ``BalancedCrossEntropyLoss``) is applied to the pseudo-labels.
            Without one the model is a pure CAM classifier and predicts CAMs
            with a constant background.
        train_cfg (dict): ``warmup_iters`` (classification-only iterations,
            default 0), ``cam_scales`` ((1.0, 0.5, 1.5)), ``cam_flip`` (True),
            ``low_thr`` (0.25), ``high_thr`` (0.7), ``autocast`` (True: the
            no-grad CAM pass runs in bf16 on CUDA), ``feat_refine`` (None;
            True or a dict of :func:`feat_refine_args`: the pseudo-label
            CAM is propagated over the affinity of the crop's own tokens,
            :func:`feature_affinity_refine`, restricted to present classes),
            ``cam_from_forward`` (False; True takes the pseudo-label CAM
            from the training forward's own tokens, detached, instead of a
            second no-grad backbone pass: the same CAM when ``cam_scales``
            is ``(1.0, )`` without flip and the backbone has no drop-path /
            dropout, one backbone forward less per step -- the frozen-
            backbone CPU recipes).
        test_cfg (dict): See :class:`WSSSBaseSegmentor`.
        token_head (dict, optional): A :class:`ClsTokenHead` on the class
            token, trained with the image labels (``loss_cls_token``); with
            ``test_cfg.localizer='getam'`` (and ``test_cfg.getam``:
            ``start_block`` -2, ``affinity`` False) the predicted ``cams``
            are its class-token-gradient maps (ACR / GETAM).
        regularizers (list[dict], optional): Extra losses on the online
            forward, e.g. ``[dict(type='ACRLoss')]`` (see
            :meth:`WSSSBaseSegmentor.build_regularizers`).
        pretrained (str, optional): A stock mmseg model's weights key:
            handed to the backbone (``init_cfg=Pretrained``), as
            ``EncoderDecoder`` does.
        auxiliary_head, neck: Stock mmseg keys, accepted only as None (a
            config turned from ``EncoderDecoder`` says what to write).

    A stock ``SegDataPreProcessor`` becomes :class:`WSSSDataPreprocessor`
    (same arguments). Backbones other than :class:`WSSSViT` are probed once
    here (:func:`probe_outputs`); a head's ``in_channels=None`` takes the
    channels of the map it reads. CoSA and APC take the same stock keys.

    Example:
        See ``configs/baseline/cam_vitb_voc.py``; in short:

        >>> model = dict(
        ...     type='CAMSegmentor', backbone=dict(type='WSSSViT'),
        ...     cam_head=dict(type='CAMHead', in_channels=768, num_classes=20),
        ...     decode_head=dict(type='LargeFOVHead', in_channels=768,
        ...                      channels=512, num_classes=21),
        ...     train_cfg=dict(warmup_iters=6000))
    """

    TRAIN_CFG = dict(
        warmup_iters=0,
        cam_scales=(1.0, 0.5, 1.5),
        cam_flip=True,
        low_thr=0.25,
        high_thr=0.7,
        autocast=True,
        feat_refine=None,
        cam_from_forward=False)
    TEST_CFG = dict(localizer='cam', getam=dict())

    def __init__(self,
                 backbone: ConfigType,
                 cam_head: ConfigType,
                 aux_cam_head: OptConfigType = None,
                 decode_head: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg=None,
                 token_head: OptConfigType = None,
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
        self.cam_head = MODELS.build(
            self.head_with_channels(cam_head, 'cam_head', 'cam'))
        self.num_classes = self.cam_head.num_classes
        aux_cam_head = self.head_with_channels(aux_cam_head, 'aux_cam_head',
                                               'aux')
        self.aux_cam_head = MODELS.build(aux_cam_head) \
            if aux_cam_head is not None else None
        self.build_decode_head(decode_head)
        self.setup_cfgs(train_cfg, test_cfg)
        if self.train_cfg.get('cam_from_forward'):
            self._check_single_pass_cam()
        self.token_head = MODELS.build(token_head) \
            if token_head is not None else None
        if self.test_cfg.get('localizer', 'cam') not in ('cam', 'getam'):
            raise ValueError("test_cfg.localizer must be 'cam' or 'getam', "
                             f"got {self.test_cfg['localizer']!r}")
        if self.test_cfg.get('localizer') == 'getam' and \
                self.token_head is None:
            raise ValueError("test_cfg.localizer='getam' needs a token_head")
        self.build_regularizers(regularizers)
        self.check_backbone_needs()

    # ------------------------------------------------------------------ #
    def forward_maps(self,
                     inputs: Tensor,
                     classes: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """One forward: token-resolution ``cam`` (and ``seg``); with
        ``test_cfg.localizer='getam'`` ``cam`` holds class-token-gradient
        maps instead, computed for ``classes`` ((K,) bool) only when given
        (one backward pass per class; the others stay 0)."""
        maps = self.forward_net(self, inputs)
        if self.test_cfg.get('localizer', 'cam') == 'getam':
            maps['cam'] = class_token_gradient_map(
                self.backbone, self.token_head, inputs, classes=classes,
                **self.test_cfg.get('getam', {}))
        return maps

    @staticmethod
    def forward_net(net,
                    inputs: Tensor,
                    with_aux: bool = False,
                    keep: Optional[dict] = None) -> Dict[str, Tensor]:
        """Token-resolution maps of a network made of ``net.backbone``,
        ``net.cam_head``, ``net.decode_head`` (may be None) and, with
        ``with_aux``, ``net.aux_cam_head``: ``cam`` (B, K, h, w) raw CAM,
        ``aux_cam`` and ``seg`` (B, K+1, h, w) logits. The backbone's
        features are stored in ``keep`` when given."""
        feats = net.backbone.forward_wsss(inputs)
        if keep is not None:
            keep.update(feats)
        maps = dict(cam=net.cam_head.get_cam(feats['tokens']))
        if with_aux:
            maps['aux_cam'] = net.aux_cam_head.get_cam(feats['aux_tokens'])
        if net.decode_head is not None:
            maps['seg'] = net.decode_head(feats['outs'])
        return maps

    @torch.no_grad()
    def no_grad_multi_scale(self, fn, inputs: Tensor) -> Dict[str, Tensor]:
        """``fn`` over ``train_cfg.cam_scales`` (+ flips), no grad, bf16
        autocast on CUDA; CAM pairs merged with ReLU(max), logits summed."""
        cfg = self.train_cfg
        with torch.autocast(
                device_type=inputs.device.type,
                dtype=torch.bfloat16,
                enabled=bool(cfg['autocast']) and inputs.is_cuda), \
                preserve_bn_stats(self):
            return self._aggregate(inputs, cfg['cam_scales'],
                                   cfg['cam_flip'], fn)

    def net_multi_scale_maps(self, net, inputs: Tensor,
                             with_aux: bool = False):
        """:meth:`forward_net` of ``net`` over ``train_cfg.cam_scales``
        (+ flips) with :meth:`no_grad_multi_scale`, and the backbone tokens
        of ``inputs`` from its scale-1 pass (``None`` when the scales have
        no such pass): ``(maps, tokens)``."""
        scale1 = {}

        def maps_of(x):
            keep = {} if x.shape[-2:] == inputs.shape[-2:] else None
            maps = self.forward_net(net, x, with_aux, keep)
            if keep and not scale1:  # (with flip: [view; flipped view])
                scale1['tokens'] = keep['tokens'][:inputs.shape[0]]
            return maps

        return self.no_grad_multi_scale(maps_of, inputs), scale1.get('tokens')

    def _check_single_pass_cam(self) -> None:
        """The training forward's tokens can stand in for the pseudo-label
        CAM pass only when that pass is a single scale-1 one without flip
        (``train_cfg.cam_from_forward``)."""
        scales = tuple(self.train_cfg['cam_scales'])
        if scales != (1.0, ) or self.train_cfg['cam_flip']:
            raise ValueError(
                'train_cfg.cam_from_forward=True reuses the training '
                "forward's tokens: it needs cam_scales=(1.0, ) and "
                f"cam_flip=False, got {scales} and "
                f"{self.train_cfg['cam_flip']}")

    def multi_scale_cam(self,
                        inputs: Tensor,
                        tokens: Optional[Tensor] = None) -> Tensor:
        """Normalised multi-scale+flip CAM (B, K, H, W) of the current
        network, for pseudo-labels (no grad; bf16 autocast on CUDA). The
        ``tokens`` of ``inputs``, when given, stand in for the backbone pass
        at scale 1 (``train_cfg.cam_from_forward``: the only pass)."""
        if tokens is not None:
            self._check_single_pass_cam()

        def cam_of(x):
            if tokens is not None and x.shape == inputs.shape:
                return dict(cam=self.cam_head.get_cam(tokens.detach()))
            return dict(cam=self.cam_head.get_cam(
                self.backbone.forward_wsss(x)['tokens']))

        return normalize_cam(self.no_grad_multi_scale(cam_of, inputs)['cam'])

    def classification_losses(self, feats: dict,
                              img_labels: Tensor) -> Dict[str, Tensor]:
        """Image classification of the CAM head (``loss_cls``), the aux CAM
        head (``loss_cls_aux``) and the class-token head, where present."""
        losses = self.cam_head.loss(feats['tokens'], img_labels)
        if self.aux_cam_head is not None:
            aux = self.aux_cam_head.loss(feats['aux_tokens'], img_labels)
            losses.update({f'{k}_aux': v for k, v in aux.items()})
        if getattr(self, 'token_head', None) is not None:
            losses.update(self.token_head.loss(feats['cls_token'],
                                               img_labels))
        return losses

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """One training iteration, step by step.

        1. ViT forward on the crop; image classification (+ aux).
        2. After the warm-up: multi-scale CAM (no grad) -> two-threshold
           pseudo-label -> balanced CE on the upsampled decoder logits.
        """
        if isinstance(inputs, dict):  # multi-view pipelines: use the weak one
            inputs = inputs['weak']
        img_labels = stack_img_labels(data_samples, self.num_classes)
        feats = self.online_forward(inputs)
        losses = self.classification_losses(feats, img_labels)
        losses.update(self.regularizer_losses(inputs, feats, img_labels))

        in_warmup = get_current_iter() < self.train_cfg['warmup_iters']
        if self.decode_head is None or in_warmup:
            return losses

        cam = self.multi_scale_cam(
            inputs, feats['tokens']
            if self.train_cfg.get('cam_from_forward') else None)
        if self.train_cfg.get('feat_refine'):
            cam = normalize_cam(self.refine_by_features(
                cam, inputs, self.train_cfg['feat_refine'],
                feats=feats['tokens'], present=img_labels))
        valid = valid_mask_of(data_samples, inputs.shape[-2:], inputs.device)
        pseudo = cam_to_label(cam, img_labels, self.train_cfg['low_thr'],
                              self.train_cfg['high_thr'], valid)
        losses.update(
            self.decode_loss(self.decode_head(feats['outs']), pseudo))
        losses['pl_fg_ratio'] = ((pseudo > 0) & (pseudo != 255)).float().mean()
        return losses
