from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class WSSSDataPreprocessor(SegDataPreProcessor):
    """Normalises and pads every view of a sample identically.

    ``inputs`` from the dataloader is either a list of (3, H, W) images (one
    view, as in stock mmseg) or a dict of such lists (several pixel-aligned
    views, e.g. ``{'weak': [...], 'strong': [...]}`` from
    :class:`PackWSSSInputs`). The output has the same structure with stacked
    (B, 3, H, W) tensors (a list of per-sample view dicts is accepted too).
    In training every view, ``gt_sem_seg`` (with
    ``seg_pad_val``) and ``valid_mask`` (with 0) get the same bottom/right
    padding to ``size`` or a multiple of ``size_divisor``.

    Arguments are those of :class:`mmseg.models.SegDataPreProcessor`.

    Every view (``weak`` / ``strong``) is normalised and padded
    identically; ``valid_mask`` is padded with 0 (padding is never image).

    Example:
        >>> data_preprocessor = dict(
        ...     type='WSSSDataPreprocessor', mean=[123.675, 116.28, 103.53],
        ...     std=[58.395, 57.12, 57.375], bgr_to_rgb=True, size_divisor=16)
    """

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        data = self.cast_data(data)
        inputs = data['inputs']
        data_samples = data.get('data_samples', None)
        if isinstance(inputs, (list, tuple)) and inputs and isinstance(
                inputs[0], dict):  # list of per-sample view dicts
            inputs = {k: [view[k] for view in inputs] for k in inputs[0]}
        views = inputs if isinstance(inputs, dict) else {None: inputs}
        views = {k: self._normalize(v) for k, v in views.items()}

        if training:
            if data_samples is None:
                raise ValueError('data_samples are required in training')
            views = self._pad_views(views, data_samples, self.size,
                                    self.size_divisor)
            if self.batch_augments is not None:
                raise NotImplementedError(
                    'batch_augments are not supported by '
                    'WSSSDataPreprocessor')
        else:
            shapes = {tuple(t.shape[1:]) for v in views.values() for t in v}
            if len(shapes) != 1 and not self.test_cfg:
                raise ValueError(
                    f'images of different sizes {sorted(shapes)} in one test '
                    'batch; use batch_size=1 or set test_cfg.size_divisor')
            if self.test_cfg:
                # the labels keep their size: predictions are un-padded
                # back to it (postprocess_maps)
                views = self._pad_views(
                    views, data_samples, self.test_cfg.get('size', None),
                    self.test_cfg.get('size_divisor', None),
                    pad_labels=False)
            else:
                views = {k: torch.stack(v) for k, v in views.items()}
        inputs = views[None] if None in views else views
        return dict(inputs=inputs, data_samples=data_samples)

    def _normalize(self, imgs: Sequence[Tensor]) -> List[Tensor]:
        if self.channel_conversion and imgs[0].size(0) == 3:
            imgs = [img[[2, 1, 0], ...] for img in imgs]
        imgs = [img.float() for img in imgs]
        if self._enable_normalize:
            imgs = [(img - self.mean) / self.std for img in imgs]
        return imgs

    def _pad_views(self, views: Dict[Optional[str], List[Tensor]],
                   data_samples: Optional[list], size: Optional[tuple],
                   size_divisor: Optional[int],
                   pad_labels: bool = True) -> Dict[Optional[str], Tensor]:
        first = next(iter(views.values()))
        for name, v in views.items():
            if [t.shape for t in v] != [t.shape for t in first]:
                raise ValueError(
                    f'view {name!r} is not pixel-aligned with the first view:'
                    f' {[tuple(t.shape) for t in v]} vs '
                    f'{[tuple(t.shape) for t in first]}')
        sizes = np.array([t.shape[-2:] for t in first])
        target = sizes.max(0)
        if size is not None:
            target = np.maximum(target, np.array(size[-2:]))
        elif size_divisor:
            target = (target + size_divisor - 1) // size_divisor * size_divisor
        out = {k: [] for k in views}
        for i, (h, w) in enumerate(sizes):
            pad = (0, int(target[1] - w), 0, int(target[0] - h))
            for k, v in views.items():
                out[k].append(F.pad(v[i], pad, value=self.pad_val))
            if data_samples is None:
                continue
            sample = data_samples[i]
            for field, value in (('gt_sem_seg', self.seg_pad_val),
                                 ('valid_mask', 0)):
                if field in sample and pad_labels:
                    pixel_data = sample.get(field)
                    padded = F.pad(pixel_data.data, pad, value=value)
                    # PixelData checks a new value against the old shape
                    del pixel_data.data
                    pixel_data.data = padded
            sample.set_metainfo(
                dict(img_shape=(int(h), int(w)),
                     pad_shape=(int(target[0]), int(target[1])),
                     padding_size=pad))
        return {k: torch.stack(v) for k, v in out.items()}
