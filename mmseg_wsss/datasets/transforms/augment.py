"""Geometric and photometric transforms of the WSSS training views.

Order in a pipeline: ``RandomRescale`` -> ``RandomFlip`` -> ``RandomCropPad``
-> ``RandomGaussianBlur`` -> (``StrongPhotometricView``) -> ``PackWSSSInputs``.
``RandomCropPad`` creates ``valid_mask``; geometric transforms after it would
have to move that mask too.
"""
import random
from typing import Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS
from PIL import Image, ImageEnhance, ImageOps


def _seg_keys(results: dict) -> list:
    """The masks to move with the image: ``gt_seg_map`` and the
    ``seg_fields``, each once (mmseg's ``LoadAnnotations`` lists
    ``gt_seg_map`` in ``seg_fields`` too; cropping it twice would fail)."""
    keys = ['gt_seg_map'] + list(results.get('seg_fields', []))
    return [
        k for i, k in enumerate(keys)
        if k in results and k not in keys[:i]
    ]


@TRANSFORMS.register_module()
class RandomRescale(BaseTransform):
    """Rescale the image (and its mask) by a factor drawn uniformly from
    ``ratio_range``, relative to its own size (ToCo/CoSA: 0.5-2.0).

    Args:
        ratio_range (tuple[float, float]): Range of the scale factor.
            Defaults to (0.5, 2.0).

    Example:
        >>> dict(type='RandomRescale', ratio_range=(0.5, 2.0))
    """

    def __init__(self, ratio_range: Tuple[float, float] = (0.5, 2.0)):
        if not 0 < ratio_range[0] <= ratio_range[1]:
            raise ValueError(f'bad ratio_range {ratio_range}')
        self.ratio_range = tuple(ratio_range)

    def transform(self, results: dict) -> dict:
        r = random.uniform(*self.ratio_range)
        img = results['img']
        h, w = img.shape[:2]
        size = (max(1, int(round(w * r))), max(1, int(round(h * r))))
        results['img'] = mmcv.imresize(img, size, interpolation='bilinear')
        for key in _seg_keys(results):
            results[key] = mmcv.imresize(
                results[key], size, interpolation='nearest')
        results['img_shape'] = results['img'].shape[:2]
        results['scale_factor'] = (size[0] / w, size[1] / h)
        return results

    def __repr__(self):
        return f'{type(self).__name__}(ratio_range={self.ratio_range})'


@TRANSFORMS.register_module()
class RandomCropPad(BaseTransform):
    """Random crop to ``crop_size``, zero-padding images that are smaller.

    A smaller image is placed at a random offset inside a canvas of at least
    the crop size (image ``pad_val``, mask ``seg_pad_val``), then a random
    crop is taken. ``results['valid_mask']`` (uint8, 1 = pixel from the
    image) records which pixels are real; the packed sample carries it.

    Args:
        crop_size (int | tuple[int, int]): Output (h, w).
        pad_val (float): Image padding value. Defaults to 0.
        seg_pad_val (int): Mask padding value (ignored in losses and
            metrics). Defaults to 255.

    Example:
        >>> dict(type='RandomCropPad', crop_size=(448, 448))
    """

    def __init__(self,
                 crop_size: Union[int, Tuple[int, int]],
                 pad_val: float = 0,
                 seg_pad_val: int = 255):
        if isinstance(crop_size, int):
            crop_size = (crop_size, crop_size)
        self.crop_size = tuple(crop_size)
        self.pad_val = pad_val
        self.seg_pad_val = seg_pad_val

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        ch, cw = self.crop_size
        big_h, big_w = max(ch, h), max(cw, w)
        oy, ox = random.randint(0, big_h - h), random.randint(0, big_w - w)
        y, x = random.randint(0, big_h - ch), random.randint(0, big_w - cw)

        def place(arr, fill):
            canvas = np.full((big_h, big_w) + arr.shape[2:], fill,
                             dtype=arr.dtype)
            canvas[oy:oy + h, ox:ox + w] = arr
            return canvas[y:y + ch, x:x + cw]

        results['img'] = place(img, self.pad_val)
        results['valid_mask'] = place(np.ones((h, w), np.uint8), 0)
        for key in _seg_keys(results):
            results[key] = place(results[key], self.seg_pad_val)
        results['img_shape'] = (ch, cw)
        return results

    def __repr__(self):
        return f'{type(self).__name__}(crop_size={self.crop_size})'


@TRANSFORMS.register_module()
class RandomGaussianBlur(BaseTransform):
    """Gaussian blur with probability ``prob`` and sigma drawn uniformly from
    ``sigma_range``.

    Args:
        prob (float): Probability of blurring. Defaults to 0.5.
        sigma_range (tuple[float, float]): Range of the Gaussian sigma in
            pixels. Defaults to (0.1, 2.0).

    Example:
        >>> dict(type='RandomGaussianBlur', prob=0.5)
    """

    def __init__(self, prob: float = 0.5,
                 sigma_range: Tuple[float, float] = (0.1, 2.0)):
        self.prob = prob
        self.sigma_range = tuple(sigma_range)

    def transform(self, results: dict) -> dict:
        if random.random() < self.prob:
            sigma = random.uniform(*self.sigma_range)
            results['img'] = cv2.GaussianBlur(results['img'], (0, 0), sigma)
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(prob={self.prob}, '
                f'sigma_range={self.sigma_range})')


def _enhance(cls):
    return lambda img, m: cls(img).enhance(0.1 + 0.18 * m)


PHOTOMETRIC_OPS = {
    'identity': lambda img, m: img,
    'autocontrast': lambda img, m: ImageOps.autocontrast(img),
    'equalize': lambda img, m: ImageOps.equalize(img),
    'solarize': lambda img, m: ImageOps.solarize(
        img, min(int(25.6 * m), 255)),
    'color': _enhance(ImageEnhance.Color),
    'contrast': _enhance(ImageEnhance.Contrast),
    'brightness': _enhance(ImageEnhance.Brightness),
    'sharpness': _enhance(ImageEnhance.Sharpness),
    'posterize': lambda img, m: ImageOps.posterize(img, max(1, 4 - int(
        0.4 * m))),
}


@TRANSFORMS.register_module()
class StrongPhotometricView(BaseTransform):
    """Make CoSA's strong view: the (weak) image plus one photometric op.

    The op is drawn uniformly from ``ops`` and its magnitude ``m`` uniformly
    from ``magnitude_range`` (integers). Solarize threshold
    ``min(int(25.6 m), 255)``; enhance factor ``0.1 + 0.18 m``; posterize
    bits ``4 - int(0.4 m)``. The result goes to ``results[out_key]``; the
    two views stay pixel-aligned (no geometric change).

    Args:
        ops (Sequence[str]): Names of the ops to draw from (all nine by
            default; an unknown name is refused).
        magnitude_range (tuple[int, int]): Integer magnitude range.
            Defaults to (1, 9).
        out_key (str): Result key of the strong view. Defaults to
            ``'img_strong'`` (what :class:`PackWSSSInputs` packs).

    Example:
        >>> dict(type='StrongPhotometricView',
        ...      ops=('identity', 'autocontrast', 'sharpness', 'color',
        ...           'contrast', 'posterize'), magnitude_range=(3, 7))
    """

    def __init__(self,
                 ops: Sequence[str] = tuple(PHOTOMETRIC_OPS),
                 magnitude_range: Tuple[int, int] = (1, 9),
                 out_key: str = 'img_strong'):
        unknown = set(ops) - set(PHOTOMETRIC_OPS)
        if unknown:
            raise ValueError(f'unknown ops {sorted(unknown)}; choose from '
                             f'{sorted(PHOTOMETRIC_OPS)}')
        self.ops = tuple(ops)
        self.magnitude_range = tuple(magnitude_range)
        self.out_key = out_key

    def transform(self, results: dict) -> dict:
        op = random.choice(self.ops)
        m = random.randint(*self.magnitude_range)
        rgb = Image.fromarray(np.ascontiguousarray(results['img'][..., ::-1]))
        out = np.asarray(PHOTOMETRIC_OPS[op](rgb, m))[..., ::-1]
        results[self.out_key] = np.ascontiguousarray(out)
        results['strong_op'] = (op, m)
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(ops={self.ops}, '
                f'magnitude_range={self.magnitude_range})')
