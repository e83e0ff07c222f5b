import copy
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, SampleList
from torch import Tensor

from ...utils import get_current_iter, stack_img_labels, valid_mask_of
from ..pseudo_labels import (DynamicThreshold, cam_to_label,
                             mask_cam_by_labels, normalize_cam, raw_weights,
                             seg_pseudo_label)
from .cam_segmentor import CAMSegmentor

ONLINE_MODULES = ('backbone', 'cam_head', 'aux_cam_head', 'decode_head')


@MODELS.register_module()
class CoSA(CAMSegmentor):
    """Co-training with Swapping Assignments (``methods.md`` §2).

    The online network (ON: ``backbone``, ``cam_head``, ``aux_cam_head``,
    ``decode_head``) is trained; the assignment network (AN,
    ``assignment_net``) is a deep copy of it, updated only as an EMA of ON
    (:meth:`update_assignment_net`, called after every optimizer step by
    :class:`AssignmentNetEMAHook`). AN has no gradients, is left out of the
    optimizer by :class:`TrainableOnlyOptimWrapperConstructor` and of DDP's
    gradient sync (``requires_grad=False``), and is saved in checkpoints.
    (The reference code initialised AN's heads independently; a copy is the
    cleaner reading of "EMA of ON".)

    Inputs are ``{'weak': ..., 'strong': ...}`` (see
    :class:`StrongPhotometricView`): AN sees the weak view, ON the strong one.

    Args:
        momentum (float): EMA momentum m. Defaults to 0.9994.
        dynamic_threshold (dict): :class:`DynamicThreshold` arguments
            (``enabled`` switches it; initial thresholds are
            ``train_cfg.low_thr``/``high_thr``).
        raw (dict): ``enabled``, ``temperature`` (0.1), ``beta`` (1.0).
        loss_s2c (dict, optional): :class:`SegToCAMLoss`; None turns SPL off.
        loss_csc (dict, optional): :class:`ContrastiveSeparationLoss`; None
            turns CSC off.
        train_cfg (dict): :class:`CAMSegmentor`'s keys plus ``aux_low_thr``
            / ``aux_high_thr`` (0.25 / 0.7), ``spl_temperature`` (0.01),
            ``csc_confidence`` (0.9) and ``c2s_aux_weight`` (0.5): L_c2s =
            (1 - a) * main + a * aux, the aux CAM's pseudo-label term (the
            paper's 1/2; 0 drops it, e.g. where the aux layer's CAM is
            poor, as on frozen DINOv2).
        test_cfg (dict): plus ``predict_net``: ``'an'`` (default) or ``'on'``.
        Other arguments as :class:`CAMSegmentor`; ``decode_head.loss_decode``
        is the balanced CE of L_c2s (its ``loss_weight`` = 0.1).

    Example:
        See ``configs/cosa/cosa_vitb_voc.py`` (the CAM baseline's model plus
        these keys; the config also needs ``AssignmentNetEMAHook`` and
        ``TrainableOnlyOptimWrapperConstructor``):

        >>> model = dict(
        ...     type='CoSA', momentum=0.9994,
        ...     loss_s2c=dict(type='SegToCAMLoss', loss_weight=0.05),
        ...     loss_csc=dict(type='ContrastiveSeparationLoss',
        ...                   loss_weight=0.1))
        >>> custom_hooks = [dict(type='AssignmentNetEMAHook')]
    """

    TRAIN_CFG = dict(
        aux_low_thr=0.25,
        aux_high_thr=0.7,
        spl_temperature=0.01,
        csc_confidence=0.9,
        c2s_aux_weight=0.5)
    TEST_CFG = dict(predict_net='an')
    RAW = dict(enabled=True, temperature=0.1, beta=1.0)

    def __init__(self,
                 backbone: ConfigType,
                 cam_head: ConfigType,
                 aux_cam_head: ConfigType,
                 decode_head: ConfigType,
                 momentum: float = 0.9994,
                 dynamic_threshold: dict = dict(enabled=True),
                 raw: dict = dict(enabled=True),
                 loss_s2c: OptConfigType = dict(type='SegToCAMLoss'),
                 loss_csc: OptConfigType = dict(
                     type='ContrastiveSeparationLoss'),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg=None,
                 regularizers: Optional[list] = None,
                 pretrained: Optional[str] = None,
                 auxiliary_head: OptConfigType = None,
                 neck: OptConfigType = None):
        super().__init__(
            backbone=backbone,
            cam_head=cam_head,
            aux_cam_head=aux_cam_head,
            decode_head=decode_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
            regularizers=regularizers,
            pretrained=pretrained,
            auxiliary_head=auxiliary_head,
            neck=neck)
        if not 0 <= momentum < 1:
            raise ValueError(f'momentum must be in [0, 1), got {momentum}')
        if self.train_cfg.get('cam_from_forward'):
            raise ValueError(
                "CoSA's pseudo-label CAMs come from the assignment network's "
                'own pass: train_cfg.cam_from_forward does not apply (set '
                'it False)')
        if not 0 <= self.train_cfg['c2s_aux_weight'] <= 1:
            raise ValueError('train_cfg.c2s_aux_weight must be in [0, 1], '
                             f"got {self.train_cfg['c2s_aux_weight']}")
        self.momentum = momentum
        self.check_keys(raw, self.RAW, 'CoSA raw')
        self.raw = dict(self.RAW, **raw)
        self.dynamic_threshold = DynamicThreshold(
            low=self.train_cfg['low_thr'],
            high=self.train_cfg['high_thr'],
            **dynamic_threshold)
        self.loss_s2c = MODELS.build(loss_s2c) if loss_s2c else None
        self.loss_csc = MODELS.build(loss_csc) if loss_csc else None
        self.assignment_net = nn.ModuleDict(
            {k: copy.deepcopy(getattr(self, k))
             for k in ONLINE_MODULES}).requires_grad_(False).eval()
        self.register_buffer('an_updates', torch.zeros((),
                                                       dtype=torch.long))
        self._register_load_state_dict_pre_hook(self._an_from_online)

    def _an_from_online(self, state_dict, prefix, *args) -> None:
        """Loading a checkpoint without an assignment network (``load_from``
        a CAM-baseline checkpoint) initialises AN from the loaded online
        network -- as training starts AN from ON -- instead of leaving it
        random."""
        an_prefix = prefix + 'assignment_net.'
        if any(k.startswith(an_prefix) for k in state_dict):
            return
        online = [k for k in state_dict if k.startswith(prefix) and
                  k[len(prefix):].split('.')[0] in ONLINE_MODULES]
        if not online:
            return
        for k in online:
            state_dict[an_prefix + k[len(prefix):]] = state_dict[k]
        print_log(
            'CoSA: the checkpoint holds no assignment network (e.g. a CAM-'
            f'baseline checkpoint); initialised it from the {len(online)} '
            'loaded online-network tensors', logger='current')

    # ------------------------------------------------------------ AN / EMA
    def _pairs(self):
        for name in ONLINE_MODULES:
            on, an = getattr(self, name), self.assignment_net[name]
            yield list(on.parameters()), list(an.parameters())
            yield ([b for b in on.buffers() if b.is_floating_point()],
                   [b for b in an.buffers() if b.is_floating_point()])

    @torch.no_grad()
    def update_assignment_net(self, momentum: Optional[float] = None):
        """``xi <- m xi + (1 - m) theta`` over parameters and float
        buffers; ``momentum=0`` copies ON into AN."""
        m = self.momentum if momentum is None else momentum
        for on, an in self._pairs():
            if an:
                torch._foreach_mul_(an, m)
                torch._foreach_add_(an, on, alpha=1 - m)
        self.an_updates += 1

    def init_weights(self):
        super().init_weights()
        # AN starts as an exact copy of the initialised (pretrained) ON
        self.update_assignment_net(momentum=0.0)
        self.an_updates.zero_()

    def train(self, mode: bool = True):
        super().train(mode)
        self.assignment_net.eval()  # no drop path in the teacher
        return self

    def forward_maps(self, inputs: Tensor) -> Dict[str, Tensor]:
        net = self.test_cfg.get('predict_net', 'an')
        if net not in ('an', 'on'):
            raise ValueError(f"test_cfg.predict_net must be 'an' or 'on', "
                             f'got {net!r}')
        return self.forward_net(
            self.assignment_net if net == 'an' else self, inputs)

    def refinement_backbone(self):
        """The predicting network's backbone (``test_cfg.predict_net``)."""
        if self.test_cfg.get('predict_net', 'an') == 'an':
            return self.assignment_net['backbone']
        return self.backbone

    # ------------------------------------------------------------ training
    def loss(self, inputs, data_samples: SampleList) -> dict:
        """One CoSA iteration, step by step (``methods.md`` §2)."""
        if isinstance(inputs, dict):
            weak, strong = inputs['weak'], inputs.get('strong',
                                                      inputs['weak'])
        else:
            weak = strong = inputs
        cfg = self.train_cfg
        img_labels = stack_img_labels(data_samples, self.num_classes)
        it = get_current_iter()
        if it >= 2 and int(self.an_updates) == 0:
            raise RuntimeError(
                'CoSA: the assignment network was never updated; add '
                "dict(type='AssignmentNetEMAHook') to custom_hooks")

        # 8. classification on ON's strong view (always)
        feats = self.online_forward(strong)
        losses = self.classification_losses(feats, img_labels)
        # e.g. ACR on ON's attention (strong view and its flip)
        losses.update(self.regularizer_losses(strong, feats, img_labels))
        if it < cfg['warmup_iters']:  # AN is not run during the warm-up
            return losses

        # 1. AN on the weak view: multi-scale CAMs and segmentation logits
        #    (and its tokens of the weak view at scale 1)
        an, tokens = self.net_multi_scale_maps(self.assignment_net, weak,
                                               with_aux=True)
        cam = mask_cam_by_labels(normalize_cam(an['cam']), img_labels)
        if cfg.get('feat_refine'):  # over the AN's tokens of the weak view
            if tokens is None:  # no scale-1 pass among cam_scales
                with torch.no_grad():
                    tokens = self.assignment_net['backbone'].forward_wsss(
                        weak)['tokens']
            cam = normalize_cam(self.refine_by_features(
                cam, weak, cfg['feat_refine'], feats=tokens,
                present=img_labels))
        aux_cam = mask_cam_by_labels(normalize_cam(an['aux_cam']), img_labels)
        valid = valid_mask_of(data_samples, weak.shape[-2:], weak.device)
        grid = feats['grid']

        # 3. dynamic threshold from the CAM maxima on the token grid
        #    (tokens that are mostly image, not crop padding)
        cam_max = F.adaptive_avg_pool2d(cam, grid).max(dim=1)[0]
        on_image = F.adaptive_avg_pool2d(valid[:, None].float(), grid)[:, 0]
        low, high = self.dynamic_threshold.update(cam_max[on_image > 0.5])

        # 2. CAM pseudo-labels; 4. RAW labels and weights
        if self.raw['enabled']:
            cpl, weight = raw_weights(cam, img_labels, low, high,
                                      self.raw['temperature'],
                                      self.raw['beta'])
            cpl[~valid] = 255
        else:
            cpl = cam_to_label(cam, img_labels, low, high, valid)
            weight = None
        a = float(cfg['c2s_aux_weight'])

        # 5. L_c2s on ON's segmentation of the strong view
        seg_on = self.decode_head(feats['outs'])
        main = sum(self.decode_loss(seg_on, cpl, weight).values())
        losses['loss_c2s'] = (1 - a) * main
        if a > 0:
            cpl_aux = cam_to_label(aux_cam, img_labels, cfg['aux_low_thr'],
                                   cfg['aux_high_thr'], valid)
            losses['loss_c2s'] = losses['loss_c2s'] + a * sum(
                self.decode_loss(seg_on, cpl_aux).values())

        if self.loss_s2c is not None or self.loss_csc is not None:
            cam_on = self.cam_head.get_cam(feats['tokens'])
            # 6. SPL: sharpened AN segmentation on the token grid
            spl = F.interpolate(
                seg_pseudo_label(an['seg'], img_labels,
                                 cfg['spl_temperature']),
                size=grid, mode='bilinear', align_corners=False)
        if self.loss_s2c is not None:
            losses[self.loss_s2c.loss_name] = self.loss_s2c(
                cam_on, spl[:, 1:])
        if self.loss_csc is not None:
            # 7. CSC with confident SPL hard labels on the token grid
            conf, hard = spl.max(dim=1)
            hard[conf <= cfg['csc_confidence']] = 255
            cam_on_norm = normalize_cam(cam_on.detach().relu())
            losses[self.loss_csc.loss_name] = self.loss_csc(
                feats['tokens'], hard, cam_on_norm, img_labels, low)

        losses['tau_low'] = cam.new_tensor(low)
        losses['tau_high'] = cam.new_tensor(high)
        losses['pl_fg_ratio'] = ((cpl > 0) & (cpl != 255)).float().mean()
        return losses
