import math
from typing import List

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from mmseg.utils import OptConfigType, OptSampleList, SampleList
from torch import Tensor

from ..backbones.clip_vit import CLIPViT
from ..pseudo_labels.clip_es import (box_mask, caa_refine, clip_cam_fns,
                                     clip_es_scores, minmax01,
                                     sinkhorn_affinity, softmax_gradcam)
from ..utils.clip_text import load_text_bank
from .base import WSSSBaseSegmentor, wsss_data_preprocessor


class FrozenCLIPMixin:
    """A frozen :class:`CLIPViT` and the class text rows of a
    ``tools/clip_text_embeddings.py`` file, for the CLIP methods."""

    def setup_frozen_clip(self, backbone: dict, text_embeddings: str):
        """Build ``self.backbone`` (a CLIPViT, every parameter frozen) and
        the ``fg_text`` / ``bg_text`` buffers; set ``num_classes``.

        Raises:
            TypeError: when the backbone is no CLIPViT.
        """
        self.backbone = MODELS.build(backbone)
        if not isinstance(self.backbone, CLIPViT):
            raise TypeError(f'{type(self).__name__} needs backbone=dict('
                            f"type='CLIPViT', ...), got "
                            f'{type(self.backbone).__name__}')
        for p in self.backbone.parameters():
            p.requires_grad = False
        self.patch_size = self.backbone.patch_size
        self.text_embeddings = text_embeddings
        bank = load_text_bank(text_embeddings,
                              dims=self.backbone.proj.shape[1])
        self.register_buffer('fg_text', bank['fg'], persistent=False)
        self.register_buffer('bg_text', bank['bg'], persistent=False)
        self.num_classes = len(bank['fg'])


@MODELS.register_module()
class CLIPES(FrozenCLIPMixin, WSSSBaseSegmentor):
    """CLIP-ES: training-free pseudo-masks from a frozen CLIP and class text
    (``clip.md`` §1; Lin et al., CVPR 2023).

    Per image, for each class present in its image-level labels:
    softmax-GradCAM at the last block's LayerNorm'd input, against the text
    rows ``[present classes; background words]`` (the softmax lets the other
    classes and the background words suppress the target); then
    class-aware attention affinity: the head-averaged patch attention of the
    last ``caa_blocks`` blocks, Sinkhorn-normalised, symmetrised and
    squared, propagates the CAM inside the boxes around its high part. The
    background is ``(1 - max_k cam)^bg_power``.

    It maps the classes of each sample's ``gt_img_labels`` (CLIP-ES is a
    pseudo-mask generator for images whose labels are known; a sample
    without them is refused). A source of ``tools/gen_pseudo_labels.py``
    (``CHECKPOINT`` ``none``: the CLIP weights come from
    ``backbone.pretrained``; ``--source seg``: the masks, ``--source cam``:
    the class maps with a constant background) and of ``tools/test.py`` on
    a labelled split. It does not train.

    Args:
        backbone (dict): A :class:`CLIPViT` config (frozen).
        text_embeddings (str): The ``.pth`` of
            ``tools/clip_text_embeddings.py`` (its ``fg`` rows are the
            classes, in dataset order; ``bg`` the background words).
        test_cfg (dict): ``box_thr`` (0.4 VOC, 0.7 COCO), ``bg_power``
            (1: the reference's CRF setting; its mIoU script picks 1 or 2 on
            the evaluated split), ``caa_blocks`` (8), ``sinkhorn_rounds``
            (3), ``logit_scale`` (100), ``box_last_rule`` (True: the
            reference's boxes never hold the last row / column), ``refine``
            (True; False gives the GradCAM alone, the paper's 58.6 row),
            ``batch_classes`` (True: all classes in one backward; False: the
            reference's loop, same maps).

    Example:
        >>> model = dict(
        ...     type='CLIPES',
        ...     backbone=dict(type='CLIPViT', arch='ViT-B/16',
        ...                   pretrained='pretrain/clip_vitb16.pth'),
        ...     text_embeddings='pretrain/clip_vitb16_text_voc.pth')
    """

    TEST_CFG = dict(box_thr=0.4, bg_power=1.0, caa_blocks=8,
                    sinkhorn_rounds=3, logit_scale=100.0,
                    box_last_rule=True, refine=True, batch_classes=True)

    def __init__(self,
                 backbone: dict,
                 text_embeddings: str,
                 data_preprocessor: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg=None):
        super().__init__(
            data_preprocessor=wsss_data_preprocessor(data_preprocessor),
            init_cfg=init_cfg)
        self.setup_frozen_clip(backbone, text_embeddings)
        self.decode_head = None
        if train_cfg:
            raise ValueError('CLIP-ES is training-free: remove train_cfg')
        self.setup_cfgs(None, test_cfg)
        self.test_cfg = dict(CLIPES.TEST_CFG, **self.test_cfg)

    def init_weights(self):
        self.backbone.init_weights()

    def train(self, mode: bool = True):
        super().train(False)  # frozen CLIP, always in eval mode
        return self

    def loss(self, inputs, data_samples):
        raise RuntimeError(
            'CLIP-ES is training-free: export its pseudo-masks with '
            'tools/gen_pseudo_labels.py (they train the stage-2 decoder, '
            'configs/stage2/), or evaluate them with tools/test.py')

    def forward_maps(self, inputs: Tensor):
        raise RuntimeError('CLIP-ES predicts per image with its labels: use '
                           'predict() inside image_labels_known()')

    # ------------------------------------------------------------ maps
    def image_maps(self, img: Tensor, present: List[int]) -> Tensor:
        """(len(present), h, w) CLIP-ES maps of one (1, 3, H, W) image
        (H, W multiples of the patch size) at token resolution."""
        cfg = self.test_cfg
        bb = self.backbone
        with torch.no_grad():
            x, grid = bb._embed(img)
            attns = []
            for blk in bb.blocks[:-1]:
                x, attn = blk(x, with_attn=True)
                attns.append(attn.mean(1)[0])
            _, attn = bb.blocks[-1](x, with_attn=True)
            attns.append(attn.mean(1)[0])
        text = torch.cat([self.fg_text[present], self.bg_text], 0).to(x)
        last_block, norm1, head = clip_cam_fns(self.backbone)
        scale = float(cfg['logit_scale'])
        if cfg['batch_classes']:
            cams = softmax_gradcam(last_block, x, norm1, head, text,
                                   list(range(len(present))), grid, scale)
        else:
            cams = torch.cat([
                softmax_gradcam(last_block, x, norm1, head, text, [k],
                                grid, scale) for k in range(len(present))
            ])
        if not cfg['refine']:
            return cams
        aff = torch.stack(attns[-int(cfg['caa_blocks']):]).mean(0)[1:, 1:]
        trans = sinkhorn_affinity(aff, int(cfg['sinkhorn_rounds']))
        return torch.stack([
            caa_refine(cam, trans,
                       box_mask(cam, cfg['box_thr'], cfg['box_last_rule']))
            for cam in cams
        ])

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        sizes = self.own_padded_sizes(inputs, data_samples)
        if sizes is not None:
            return super().predict(inputs, data_samples)  # splits the batch
        labels = None
        if data_samples and all('gt_img_labels' in s for s in data_samples):
            # CLIP-ES is defined on the image-level labels: a pseudo-mask
            # generator for images whose labels are known
            from mmseg_wsss.utils import stack_img_labels
            labels = stack_img_labels(data_samples, self.num_classes)
        if labels is None:
            raise ValueError(
                'CLIP-ES computes the maps of the classes in the image-level '
                'labels: run it where they are known (tools/'
                'gen_pseudo_labels.py, PseudoMaskMetric with '
                'image_labels_known=True) on samples with gt_img_labels')
        p = self.patch_size
        h, w = inputs.shape[-2:]
        nh, nw = math.ceil(h / p) * p, math.ceil(w / p) * p
        cams_out, scores_out = [], []
        for i in range(inputs.shape[0]):
            img = inputs[i:i + 1].float()
            if (nh, nw) != (h, w):  # the reference: bicubic to the multiple
                img = F.interpolate(img, size=(nh, nw), mode='bicubic',
                                    align_corners=False)
            present = labels[i].nonzero().flatten().tolist()
            full = inputs.new_zeros(self.num_classes, h, w, dtype=torch.float)
            if present:
                maps = self.image_maps(img, present)
                maps = F.interpolate(maps[None], size=(h, w),
                                     mode='bilinear', align_corners=False)[0]
                full[present] = minmax01(maps).clamp(0, 1)
            cams_out.append(full)
            scores = clip_es_scores(full, float(self.test_cfg['bg_power']))
            scores[1:][labels[i] == 0] = 0  # absent classes never win
            scores_out.append(scores.clamp(min=1e-6).log())
        out = dict(seg_logits=torch.stack(scores_out),
                   cams=torch.stack(cams_out))
        return self.postprocess_maps(out, data_samples)
