import difflib
import functools
import inspect
from contextlib import contextmanager, nullcontext
from typing import Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor

from ...utils import stack_img_labels
from ..backbones import (SharedDropPath, preserve_bn_stats,
                         require_attention)
from ..pseudo_labels import (multi_scale_flip, normalize_cam,
                             resize_to_multiple)


@contextmanager
def image_labels_known(model, known: bool = True):
    """Tell a WSSS segmentor (or a wrapped one) that the image labels in the
    data samples may be used for prediction, e.g. by GETAM
    (``test_cfg.localizer='getam'``) to compute maps only for the classes
    present in the batch. Use it only where the evaluation masks the maps
    by the labels anyway (the train-set pseudo-mask metric, the exporter
    with label masking); label-free predictions must never see it."""
    model = getattr(model, 'module', model)  # DDP and friends
    old = getattr(model, '_image_labels_known', False)
    model._image_labels_known = known
    try:
        yield model
    finally:
        model._image_labels_known = old


def feat_refine_args(beta: float = 1.0,
                     steps: int = 1,
                     color_sigma: Optional[float] = None,
                     pos_sigma: Optional[float] = None,
                     center: bool = False) -> dict:
    """The keys of ``train_cfg.feat_refine`` / ``test_cfg.feat_refine`` and
    their defaults (:func:`feature_affinity_refine`; a colour term only with
    ``color_sigma``)."""
    return dict(beta=beta, steps=steps, color_sigma=color_sigma,
                pos_sigma=pos_sigma, center=center)


STOCK_PREPROCESSORS = ('SegDataPreProcessor', 'mmseg.SegDataPreProcessor')


def wsss_data_preprocessor(cfg):
    """A stock ``SegDataPreProcessor`` config becomes the WSSS one (same
    arguments; it also pads every view of a sample -- CoSA's weak and
    strong -- and their valid masks alike)."""
    if isinstance(cfg, dict) and cfg.get('type') in STOCK_PREPROCESSORS:
        from mmengine.logging import print_log
        cfg = dict(cfg, type='WSSSDataPreprocessor')
        print_log('model.data_preprocessor: SegDataPreProcessor -> '
                  'WSSSDataPreprocessor (same arguments; pads all views '
                  'of a sample alike)', logger='current')
    return cfg


def stock_model_keys(name: str, backbone: dict, pretrained=None,
                     auxiliary_head=None, neck=None) -> dict:
    """Handle the keys of a stock mmseg model dict that ``type=...`` on it
    carries over (an ``EncoderDecoder`` config turned into a WSSS one).

    - ``pretrained``: given to the backbone, as ``EncoderDecoder`` does
      (``backbone.init_cfg=dict(type='Pretrained', checkpoint=...)``);
    - ``auxiliary_head`` / ``neck``: refused with the line to write.

    Returns:
        dict: The backbone config to build.
    """
    if auxiliary_head is not None:
        kind = auxiliary_head.get('type') if isinstance(
            auxiliary_head, dict) else type(auxiliary_head).__name__
        raise ValueError(
            f'model.auxiliary_head ({kind}): mmseg\'s auxiliary decode head '
            'learns from pixel labels, which weak supervision does not have '
            f'({name}\'s auxiliary CAM is aux_cam_head). Write '
            'auxiliary_head=None in the model dict.')
    if neck is not None:
        kind = neck.get('type') if isinstance(neck, dict) else \
            type(neck).__name__
        raise ValueError(
            f'model.neck ({kind}): WSSS segmentors give the decode head the '
            'backbone maps named in backbone.wsss.decode. Write neck=None '
            '(for mmseg\'s ViT UPerNet: UPerHead reads the four stride-16 '
            'maps as they are).')
    if pretrained is not None:
        backbone = dict(backbone)
        if backbone.get('pretrained') or backbone.get('init_cfg'):
            raise ValueError(
                f'model.pretrained={pretrained!r} and backbone weights '
                '(backbone.pretrained or backbone.init_cfg) are both set; '
                'keep one')
        backbone['init_cfg'] = dict(type='Pretrained', checkpoint=pretrained)
    return backbone


class WSSSBaseSegmentor(BaseSegmentor):
    """Inference shared by the WSSS segmentors.

    Subclasses implement :meth:`forward_maps`: one forward of the network on
    an image batch, returning token-resolution maps: ``cam`` (B, K, h, w) raw
    CAMs and, when the model has one, ``seg`` (B, K+1, h, w) segmentation
    logits. :meth:`predict` runs it over ``test_cfg.scales`` (and flips),
    sums logits, merges CAM flip pairs with ``ReLU(max)`` and normalises them
    (``methods.md`` §1.3), and returns per image:

    - ``seg_logits`` / ``pred_sem_seg``: the segmentation head's logits and
      argmax (label-free), or, for a model without one, CAMs with a constant
      background score ``test_cfg.bg_thr``;
    - ``cams`` (K, H, W): normalised CAMs in [0, 1], for the pseudo-mask
      metric and pictures;
    - ``pseudo_scores`` (K+1, H, W), when ``forward_maps`` also returns
      ``pseudo``: a model's own pseudo-label scores with its own background
      (APC: the per-patch softmax), flip pairs and scales summed, each class
      divided by its peak -- argmax-ed over the background and the present
      classes they give the model's pseudo-mask (``PseudoMaskMetric``'s
      ``own_mIoU``).

    ``test_cfg`` keys: ``scales`` (default ``(1.0, )``), ``flip`` (False),
    ``bg_thr`` (0.45; CAM-only models), ``localizer`` (``'cam'``, or
    ``'getam'`` for class-token-gradient maps in ``cams``, flip pairs
    summed; see :class:`CAMSegmentor`), ``crf`` (None; True or a dict
    of :class:`mmseg_wsss.evaluation.DenseCRF` arguments: the segmentation
    probabilities are refined on the input image and ``seg_logits`` then
    holds the refined probabilities).
    """

    patch_size: int = 16

    #: ``train_cfg`` keys and their defaults. Each segmentor declares its own
    #: here (the keys of its bases are inherited); anything else in a
    #: config's ``train_cfg`` is refused when the model is built.
    TRAIN_CFG: dict = dict()
    #: ``test_cfg`` keys and their defaults, likewise. mmseg's own keys
    #: (``mode``, ``crop_size``, ``stride``) are always accepted.
    TEST_CFG: dict = dict(
        scales=(1.0, ), flip=False, bg_thr=0.45, crf=None, feat_refine=None)
    MMSEG_TEST_CFG_KEYS = ('mode', 'crop_size', 'stride')

    @classmethod
    def declared(cls, attr: str) -> dict:
        """``TRAIN_CFG`` / ``TEST_CFG`` merged along the class hierarchy
        (a subclass's values win)."""
        out = dict()
        for klass in reversed(cls.__mro__):
            out.update(klass.__dict__.get(attr, {}))
        return out

    @staticmethod
    def check_keys(given, known, what: str) -> None:
        """Refuse keys of ``given`` that are not in ``known``, naming the
        closest known key and listing all of them."""
        unknown = [k for k in (given or {}) if k not in known]
        if not unknown:
            return
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, list(known), n=1)
            hints.append(f'{k!r}' + (f' (did you mean {close[0]!r}?)'
                                     if close else ''))
        raise KeyError(f'unknown {what} key(s) {", ".join(hints)}; known: '
                       f'{", ".join(sorted(known))}')

    def setup_cfgs(self, train_cfg, test_cfg) -> None:
        """Set ``self.train_cfg`` (declared defaults updated by the config)
        and ``self.test_cfg`` after checking every key, including those of
        the nested ``crf`` / ``getam`` / ``par`` argument dicts."""
        name = type(self).__name__
        train_known = self.declared('TRAIN_CFG')
        self.check_keys(train_cfg, train_known, f'{name} train_cfg')
        self.train_cfg = dict(train_known, **(train_cfg or {}))
        test_known = list(self.declared('TEST_CFG')) + list(
            self.MMSEG_TEST_CFG_KEYS)
        self.check_keys(test_cfg, test_known, f'{name} test_cfg')
        if (test_cfg or {}).get('mode', 'whole') != 'whole':
            raise ValueError(
                f"{name} test_cfg.mode={test_cfg['mode']!r}: WSSS segmentors "
                'predict whole images (CAMs need the whole image). Write '
                "test_cfg=dict(mode='whole', ...); for large images test at "
                'a smaller scale, e.g. test_cfg.scales=(0.5, ), or resize in '
                'the test pipeline.')
        self.test_cfg = dict(test_cfg or {})
        from mmseg_wsss.evaluation.crf import DenseCRF
        from ..pseudo_labels import class_token_gradient_map, par_refine
        for cfg, key, fn, skip in (
                (self.test_cfg, 'crf', DenseCRF.__init__, 1),
                (self.test_cfg, 'getam', class_token_gradient_map, 3),
                (self.train_cfg, 'par', par_refine, 2),
                (self.test_cfg, 'feat_refine', feat_refine_args, 0),
                (self.train_cfg, 'feat_refine', feat_refine_args, 0)):
            if isinstance(cfg.get(key), dict):
                # per-batch arguments the segmentor passes itself
                params = [
                    p for p in list(inspect.signature(fn).parameters)[skip:]
                    if p != 'classes'
                ]
                self.check_keys(cfg[key], params, f'{name} {key}')

    def head_with_channels(self, head_cfg, key: str, which: str):
        """``head_cfg`` with ``in_channels`` checked against (or, when it is
        None, set to) the channels of the backbone map it reads
        (``backbone.wsss.<which>``).

        Raises:
            ValueError: naming the key and the value to write.
        """
        if head_cfg is None:
            return None
        chans = self.backbone.wsss_channels(which) \
            if hasattr(self.backbone, 'wsss_channels') else None
        head_cfg = dict(head_cfg)
        given = head_cfg.get('in_channels')
        if chans is None:
            return head_cfg
        if given is None:
            head_cfg['in_channels'] = chans
        elif given != chans:
            where = (f'backbone output {self.backbone._wsss[which]} '
                     f'(backbone.wsss.{which})') if hasattr(
                         self.backbone, '_wsss') else f'the {which} tokens'
            raise ValueError(
                f'model.{key}.in_channels={given}, but the map it reads, '
                f'{where}, has {chans} channels: write '
                f'{key}=dict(in_channels={chans}, ...) (or leave '
                'in_channels=None to take it from the backbone)')
        return head_cfg

    def build_decode_head(self, decode_head) -> None:
        """Build the optional decode head (any mmseg decode head) with
        ``self.num_classes + 1`` classes (background first)."""
        self.decode_head = None
        if decode_head is None:
            return
        self.decode_head = MODELS.build(decode_head)
        if self.decode_head.num_classes != self.num_classes + 1:
            raise ValueError(
                f'decode_head.num_classes ({self.decode_head.num_classes}) '
                f'must be num_classes + 1 (background) = '
                f'{self.num_classes + 1}')
        self.align_corners = self.decode_head.align_corners

    # ------------------------------------------------------------ regularisers
    def build_regularizers(self, regularizers) -> None:
        """``regularizers``: loss configs added to the online network's
        training losses (e.g. ``[dict(type='ACRLoss')]``). A regulariser with
        ``needs_flip_attn`` makes the online forward return head-averaged
        attention and adds one forward of the backbone on the horizontally
        flipped crop; without regularisers neither happens."""
        self.regularizers = torch.nn.ModuleList(
            [MODELS.build(r) for r in (regularizers or [])])

    def check_backbone_needs(self) -> None:
        """Refuse, at build time, parts that need attention maps and the
        class token (ACR-style regularisers, the class-token head of GETAM)
        on a backbone without them."""
        needs = [type(r).__name__ for r in self.regularizers
                 if getattr(r, 'needs_flip_attn', False)]
        if getattr(self, 'token_head', None) is not None:
            needs.append('token_head (GETAM)')
        require_attention(self.backbone, needs)

    def _regs_want(self, flag: str) -> bool:
        return any(getattr(r, flag, False)
                   for r in getattr(self, 'regularizers', None) or [])

    #: materialise attention only in the blocks a regulariser reads (the
    #: fused kernel elsewhere); False: in every block (the behaviour before
    #: 2026-12, kept for ``tools/benchmark.py --attn-all-blocks``)
    attn_only_where_read = True

    @property
    def regularizer_attn(self):
        """What the online forward's ``with_attn`` must be."""
        return 'mean' if self._regs_want('needs_flip_attn') else False

    @property
    def regularizer_attn_blocks(self) -> Optional[List[int]]:
        """The blocks whose attention the regularisers read (their
        ``attn_blocks``; None = every block)."""
        if not self.attn_only_where_read:
            return None
        blocks = set()
        for reg in getattr(self, 'regularizers', None) or []:
            if not getattr(reg, 'needs_flip_attn', False):
                continue
            read = getattr(reg, 'attn_blocks', None)
            if read is None:
                return None
            blocks.update(read)
        return sorted(blocks)

    def online_forward(self, inputs: Tensor) -> dict:
        """The online backbone's training forward (``forward_wsss``) with
        what the regularisers need: head-averaged attention, and the
        drop-path masks recorded when a regulariser shares them with the
        flipped view (``feats['drop_path']``)."""
        kwargs = dict(with_attn=self.regularizer_attn)
        if kwargs['with_attn']:
            kwargs['attn_blocks'] = self.regularizer_attn_blocks
        if not self._regs_want('shared_drop_path'):
            return self.backbone.forward_wsss(inputs, **kwargs)
        shared = SharedDropPath(self.backbone)
        with shared.record():
            feats = self.backbone.forward_wsss(inputs, **kwargs)
        feats['drop_path'] = shared
        return feats

    def classification_losses(self, feats: dict,
                              img_labels: Tensor) -> Dict[str, Tensor]:
        """The image-classification losses of a backbone forward ``feats``
        (used for the flipped view of ``ACRLoss(flip_cls=True)``)."""
        raise NotImplementedError(
            f'{type(self).__name__} does not implement '
            'classification_losses, needed by a regulariser with flip_cls')

    def regularizer_losses(self,
                           inputs: Tensor,
                           feats: dict,
                           img_labels: Optional[Tensor] = None) -> dict:
        """Losses of ``self.regularizers`` for the online forward ``feats``
        of ``inputs`` (from :meth:`online_forward`), and, when a regulariser
        has ``flip_cls``, the classification losses of the flipped view
        (``<name>_flip``; needs ``img_labels``)."""
        losses = dict()
        regs = getattr(self, 'regularizers', None) or []
        if not regs:
            return losses
        for reg in regs:
            if not getattr(reg, 'needs_flip_attn', False):
                raise TypeError(f'{type(reg).__name__} does not say what '
                                'it needs (needs_flip_attn)')
        shared = feats.get('drop_path')
        with shared.replay() if shared is not None else nullcontext():
            flip = self.backbone.forward_wsss(
                inputs.flip(-1),
                with_attn='mean',
                attn_blocks=self.regularizer_attn_blocks)
        for reg in regs:
            losses[reg.loss_name] = reg(feats['attns'], flip['attns'],
                                        feats['grid'])
        if self._regs_want('flip_cls'):
            if img_labels is None:
                raise ValueError('a regulariser with flip_cls needs the '
                                 'image labels (img_labels)')
            losses.update({
                f'{k}_flip': v
                for k, v in self.classification_losses(flip,
                                                       img_labels).items()
            })
        return losses

    def forward_maps(self, inputs: Tensor) -> Dict[str, Tensor]:
        raise NotImplementedError

    def extract_feat(self, inputs: Tensor):
        return self.backbone(inputs)

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Single-scale segmentation logits at the input size."""
        return self._seg_logits(self._aggregate(inputs, (1.0, ), False))

    def _forward(self, inputs: Tensor, data_samples: OptSampleList = None):
        return self.forward_maps(inputs)

    def decode_loss(self,
                    seg_logits: Tensor,
                    label: Tensor,
                    weight: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """The decode head's ``loss_decode`` on (pseudo-)labels.

        Args:
            seg_logits (Tensor): (B, K+1, h, w) logits; upsampled to the
                label size (bilinear) before the loss.
            label (Tensor): (B, H, W) labels with 255 = ignore.
            weight (Tensor, optional): (B, H, W) per-pixel weights, passed
                to losses that take them (``BalancedCrossEntropyLoss``).
        """
        seg_logits = resize(seg_logits, size=label.shape[-2:],
                            mode='bilinear', align_corners=self.align_corners)
        head = self.decode_head
        loss_fns = head.loss_decode if isinstance(
            head.loss_decode, nn.ModuleList) else [head.loss_decode]
        losses = {}
        for fn in loss_fns:
            value = fn(seg_logits, label, weight=weight,
                       ignore_index=head.ignore_index)
            losses[fn.loss_name] = losses.get(fn.loss_name, 0) + value
        return losses

    def _aggregate(self, inputs: Tensor, scales, flip, fn=None,
                   cam_reduce: str = 'max_relu') -> Dict[str, Tensor]:
        """``fn`` (default :meth:`forward_maps`) over scales and flips; CAM
        pairs merged with ``cam_reduce`` (ReLU(max); ``'sum'`` for
        localisation maps), logits summed."""
        return multi_scale_flip(
            fn or self.forward_maps,
            inputs,
            scales=scales,
            flip=flip,
            multiple=self.patch_size,
            pair_reduce=dict(cam=cam_reduce, aux_cam='max_relu'))

    def _seg_logits(self, maps: Dict[str, Tensor]) -> Tensor:
        if 'seg' in maps:
            return maps['seg']
        cam = normalize_cam(maps['cam'])
        bg = cam.new_full((cam.shape[0], 1, *cam.shape[2:]),
                          self.test_cfg.get('bg_thr', 0.45))
        return torch.cat([bg, cam], dim=1)

    def known_image_labels(self,
                           data_samples: OptSampleList) -> Optional[Tensor]:
        """(B, K) image labels of the batch, when the caller said they may
        be used (:func:`image_labels_known`) and every sample carries them;
        else None."""
        if not getattr(self, '_image_labels_known', False) or \
                not data_samples or \
                any('gt_img_labels' not in s for s in data_samples):
            return None
        return stack_img_labels(data_samples, self.num_classes)

    def own_padded_sizes(self, inputs: Tensor,
                         data_samples: OptSampleList) -> Optional[list]:
        """Each image's own padded size when a test batch was padded to its
        largest image (``data_preprocessor.test_cfg.size_divisor`` with
        images of different sizes), else None.

        A WSSS prediction of an image depends on the whole input it sees
        (CAM normalisation, pooling, attention over every token), so an
        image padded further than on its own would be predicted
        differently in a batch than alone; :meth:`predict` then runs each
        image at the size ``tools/test.py`` (batch 1) gives it."""
        if not data_samples or len(data_samples) < 2:
            return None
        test_cfg = getattr(self.data_preprocessor, 'test_cfg', None) or {}
        div = test_cfg.get('size_divisor')
        if not div or test_cfg.get('size'):
            return None
        sizes = []
        for s in data_samples:
            h, w = s.metainfo.get('img_shape', inputs.shape[-2:])[:2]
            sizes.append((-(-int(h) // div) * div, -(-int(w) // div) * div))
        if all(sz == tuple(inputs.shape[-2:]) for sz in sizes):
            return None
        return sizes

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        sizes = self.own_padded_sizes(inputs, data_samples)
        if sizes is not None:
            out = []
            for i, (h, w) in enumerate(sizes):
                sample = data_samples[i]
                ih, iw = sample.metainfo['img_shape'][:2]
                pad = (0, w - iw, 0, h - ih)
                sample.set_metainfo(dict(pad_shape=(h, w), padding_size=pad))
                if 'img_padding_size' in sample.metainfo:
                    sample.set_metainfo(dict(img_padding_size=pad))
                out += self.predict(inputs[i:i + 1, :, :h, :w], [sample])
            return out
        cfg = self.test_cfg or {}
        labels = self.known_image_labels(data_samples)
        if labels is not None:
            labels = labels.to(inputs.device)
        fn = None
        if cfg.get('localizer') == 'getam' and labels is not None:
            # only the classes present in the batch
            fn = functools.partial(self.forward_maps,
                                   classes=labels.bool().any(0))
        maps = self._aggregate(
            inputs, cfg.get('scales', (1.0, )), cfg.get('flip', False), fn,
            cam_reduce='sum' if cfg.get('localizer') == 'getam' else
            'max_relu')
        if cfg.get('feat_refine') not in (None, False) and 'cam' in maps:
            maps['cam'] = self.refine_by_features(
                maps['cam'], inputs, cfg['feat_refine'], present=labels)
        out = dict(seg_logits=self._seg_logits(maps))
        if 'cam' in maps:
            out['cams'] = normalize_cam(maps['cam'])
        if 'pseudo' in maps:
            peak = maps['pseudo'].flatten(2).max(dim=-1)[0]
            out['pseudo_scores'] = maps['pseudo'] / peak.clamp(
                min=1e-8)[..., None, None]
        if cfg.get('crf') not in (None, False):
            imgs, probs = self._crf_inputs(inputs, out['seg_logits'],
                                           scores='seg' not in maps)
            if getattr(self, '_crf_jobs', None) is not None:
                # tools/test.py refines in a worker pool (WSSSTestLoop) and
                # post-processes the result like the line below does
                self._crf_jobs.append((imgs.cpu().numpy(),
                                       probs.float().cpu().numpy()))
            else:
                crf = self.crf_module()
                out['seg_logits'] = torch.stack([
                    crf.refine_tensor(img.cpu().numpy(), p)
                    for img, p in zip(imgs, probs)
                ])
        return self.postprocess_maps(out, data_samples)

    def pixels(self, inputs: Tensor) -> Tensor:
        """The (B, 3, H, W) float pixel values of a preprocessed batch (the
        data preprocessor's normalisation undone)."""
        pre = self.data_preprocessor
        imgs = inputs.detach().float()
        if getattr(pre, '_enable_normalize', False):
            imgs = imgs * pre.std.to(imgs) + pre.mean.to(imgs)
        return imgs

    def refinement_backbone(self):
        """The backbone whose tokens :meth:`refine_by_features` uses."""
        return self.backbone

    @torch.no_grad()
    def refine_by_features(self,
                           maps: Tensor,
                           inputs: Tensor,
                           cfg,
                           feats: Optional[Tensor] = None,
                           present: Optional[Tensor] = None) -> Tensor:
        """:func:`feature_affinity_refine` of ``maps`` (B, K, H, W) over the
        token features of ``inputs`` (a no-grad scale-1 forward of
        :meth:`refinement_backbone`, unless ``feats`` are given), with the
        arguments ``cfg`` (``True`` for the defaults; see
        :func:`feat_refine_args`)."""
        from ..pseudo_labels import feature_affinity_refine
        args = feat_refine_args(**({} if cfg is True else dict(cfg)))
        if feats is None:  # the token grid of the input's own size
            x = resize_to_multiple(inputs, 1.0, self.patch_size)
            with preserve_bn_stats(self):
                feats = self.refinement_backbone().forward_wsss(x)['tokens']
        colors = None
        if args['color_sigma'] is not None:
            colors = F.adaptive_avg_pool2d(
                self.pixels(inputs) / 255.0, feats.shape[-2:])
        return feature_affinity_refine(
            maps, feats.detach(), beta=args['beta'], steps=args['steps'],
            present=present, colors=colors,
            color_sigma=args['color_sigma'] or 0.1,
            pos_sigma=args['pos_sigma'], center=args['center'])

    def crf_args(self) -> dict:
        """``test_cfg.crf`` as :class:`DenseCRF` arguments."""
        crf = self.test_cfg['crf']
        if crf is True:  # --cfg-options model.test_cfg.crf=True
            crf = {}
        if not isinstance(crf, dict):
            raise TypeError('test_cfg.crf must be True or a dict of '
                            f'DenseCRF arguments, got {crf!r}')
        return dict(crf)

    def crf_module(self):
        from mmseg_wsss.evaluation.crf import DenseCRF
        if getattr(self, '_crf', None) is None:
            self._crf = DenseCRF(**self.crf_args())
        return self._crf

    def _crf_inputs(self, inputs: Tensor, seg_logits: Tensor,
                    scores: bool):
        """What DenseCRF refines for each image of the batch
        (``test_cfg.crf``): (B, H, W, 3) uint8 images and (B, K+1, H, W)
        probabilities at the input size. ``seg_logits`` are softmax-ed, or,
        when ``scores`` (CAM-only models: background constant + CAMs),
        divided by their sum."""
        imgs = self.pixels(inputs).clamp(0, 255).round().byte().permute(
            0, 2, 3, 1)
        if scores:
            probs = seg_logits.clamp(min=0)
            probs = probs / probs.sum(1, keepdim=True).clamp(min=1e-8)
        else:
            probs = seg_logits.float().softmax(dim=1)
        # the bilateral kernel treats colour channels alike: RGB or BGR
        # order does not matter
        return imgs, probs

    def postprocess_maps(self, maps: Dict[str, Tensor],
                         data_samples: OptSampleList = None) -> SampleList:
        """Undo batch padding and test-time flip, resize every map to the
        original image size and attach it (``seg_logits`` also gives
        ``pred_sem_seg``)."""
        b = next(iter(maps.values())).shape[0]
        if data_samples is None:
            data_samples = [SegDataSample() for _ in range(b)]
        for i, sample in enumerate(data_samples):
            meta = sample.metainfo
            pad = meta.get('img_padding_size', meta.get('padding_size'))
            for name, m in maps.items():
                m = m[i:i + 1]
                if pad is not None:
                    left, right, top, bottom = pad
                    m = m[..., top:m.shape[-2] - bottom,
                          left:m.shape[-1] - right]
                if meta.get('flip', False):
                    m = m.flip(-1 if meta.get('flip_direction', 'horizontal')
                               == 'horizontal' else -2)
                if 'ori_shape' in meta:
                    m = resize(m, size=meta['ori_shape'][:2], mode='bilinear',
                               align_corners=False, warning=False)
                sample.set_data({name: PixelData(data=m[0])})
                if name == 'seg_logits':
                    sample.set_data({
                        'pred_sem_seg':
                        PixelData(data=m[0].argmax(dim=0, keepdim=True))
                    })
        return data_samples
