"""A deterministic synthetic WSSS dataset in PASCAL VOC layout.

Four object classes drawn as textured shapes on textured backgrounds. Each
class has a *context* background it usually appears on (boat on water, bird
on sky, car on road, cow on grass: probability ``context_prob`` = 0.5), so a
classifier can partly cheat with the background, as real CAMs do (the
"coexistence" problem CoSA's CSC addresses). Images hold 1-3 objects, a few
hold none (their image-level label set is empty).

Layout written under ``out_dir``::

    JPEGImages/<id>.jpg  SegmentationClass/<id>.png (palette)
    ImageSets/Segmentation/{train,val}.txt  cls_labels.npy
"""
import os
import os.path as osp
from typing import Dict, Tuple

import cv2
import numpy as np
from mmseg.registry import DATASETS
from PIL import Image

from .wsss_dataset import WSSSDataset, _palette, voc_palette

TOY_CLASSES = ('background', 'boat', 'bird', 'car', 'cow')
BACKGROUNDS = ('water', 'sky', 'road', 'grass', 'sand')
# context background of each object class (index into BACKGROUNDS)
CONTEXT = {1: 0, 2: 1, 3: 2, 4: 3}


def _background(kind: str, h: int, w: int, rng: np.random.Generator
                ) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    noise = rng.normal(0, 1, (h, w)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi)
    if kind == 'water':  # blue horizontal waves
        wave = np.sin(yy / 3.0 + np.sin(xx / 9.0 + phase) * 2)
        rgb = [20 + 10 * wave, 70 + 25 * wave, 150 + 30 * wave]
    elif kind == 'sky':  # light-blue vertical gradient
        g = yy / h
        rgb = [140 + 60 * g, 180 + 40 * g, 235 - 10 * g]
    elif kind == 'road':  # smooth grey asphalt with dashed lane lines
        lane = ((np.abs(yy - h / 2) < 2) & ((xx + phase * 10) % 16 < 8))
        # low-frequency: per-pixel noise would look like the car's checker
        smooth = cv2.GaussianBlur(noise, (0, 0), 3)
        base = 95 + 40 * smooth
        rgb = [base + 140 * lane, base + 140 * lane, base + 60 * lane]
    elif kind == 'grass':  # green blades
        blades = np.sin(xx * 1.3 + np.sin(yy / 2.0) + phase)
        rgb = [40 + 15 * blades, 120 + 30 * blades, 35 + 10 * blades]
    else:  # sand: beige speckle
        rgb = [200 + 0 * xx, 180 + 0 * xx, 130 + 0 * xx]
    img = np.stack(rgb, -1) + noise[..., None] * 10
    return img


def _shape_mask(cls: int, h: int, w: int, cy: float, cx: float, r: float,
                rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dy, dx = (yy - cy) / r, (xx - cx) / r
    if cls == 1:  # boat: hull (trapezoid) + sail (triangle)
        hull = (dy > 0.1) & (dy < 0.6) & (np.abs(dx) < 1.0 - (dy - 0.1))
        sail = (dy <= 0.1) & (dy > -0.9) & (dx > -0.05) & \
            (dx < 0.7 * (dy + 0.9))
        return hull | sail
    if cls == 2:  # bird: wide V of two wings
        return (np.abs(dy + 0.5 * np.abs(dx)) < 0.22) & (np.abs(dx) < 1.0)
    if cls == 3:  # car: body + cabin
        body = (np.abs(dx) < 1.0) & (dy > -0.1) & (dy < 0.45)
        cabin = (np.abs(dx) < 0.55) & (dy >= -0.5) & (dy <= -0.1)
        return body | cabin
    # cow: ellipse body
    a = rng.uniform(0.8, 1.0)
    return (dx / a)**2 + (dy / 0.6)**2 < 1.0


def _texture(cls: int, h: int, w: int, rng: np.random.Generator
             ) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if cls == 1:  # red/white diagonal stripes
        s = ((xx + yy) % 8 < 4)
        rgb = [200 + 40 * s, 30 + 200 * s, 30 + 200 * s]
    elif cls == 2:  # yellow with orange dots
        d = (np.sin(xx * 1.2) * np.sin(yy * 1.2) > 0.6)
        rgb = [240 - 10 * d, 210 - 90 * d, 40 + 0 * d]
    elif cls == 3:  # magenta/black checker
        c = ((xx // 4 + yy // 4) % 2 == 0)
        rgb = [30 + 170 * c, 20 + 10 * c, 40 + 170 * c]
    else:  # white with black blobs
        blobs = cv2.GaussianBlur(
            rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 2.5)
        b = blobs > 0.15
        rgb = [235 - 210 * b, 235 - 210 * b, 230 - 205 * b]
    return np.stack(rgb, -1).astype(np.float32)


def make_toy_sample(rng: np.random.Generator, size: Tuple[int, int],
                    context_prob: float = 0.5,
                    empty_prob: float = 0.04):
    """One (image RGB uint8, mask uint8, label K-vector) triple."""
    h, w = size
    k = len(TOY_CLASSES) - 1
    n_obj = 0 if rng.random() < empty_prob else int(rng.integers(1, 4))
    classes = rng.integers(1, k + 1, n_obj).tolist()
    if classes and rng.random() < context_prob:
        bg = BACKGROUNDS[CONTEXT[classes[0]]]
    else:
        bg = BACKGROUNDS[int(rng.integers(0, len(BACKGROUNDS)))]
    img = _background(bg, h, w, rng)
    mask = np.zeros((h, w), np.uint8)
    for cls in classes:
        r = rng.uniform(0.14, 0.28) * min(h, w)
        cy, cx = rng.uniform(r, h - r), rng.uniform(r, w - r)
        m = _shape_mask(cls, h, w, cy, cx, r, rng)
        tex = _texture(cls, h, w, rng) * rng.uniform(0.85, 1.1)
        img[m] = tex[m]
        mask[m] = cls
    img = img + rng.normal(0, 6, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    labels = np.zeros(k, np.float32)
    present = np.unique(mask)
    labels[present[present > 0] - 1] = 1
    return img, mask, labels


def make_toy_voc(out_dir: str,
                 num_train: int = 500,
                 num_val: int = 100,
                 size_range: Tuple[int, int] = (112, 160),
                 seed: int = 0) -> Dict[str, int]:
    """Write the synthetic dataset; returns the number of images per split.

    Deterministic for a given ``seed`` and arguments; an existing complete
    set with the same parameters is left as it is.
    """
    stamp = f'{num_train} {num_val} {size_range} {seed} v5'
    stamp_file = osp.join(out_dir, '.toy_voc_stamp')
    if osp.isfile(stamp_file) and open(stamp_file).read() == stamp:
        return dict(train=num_train, val=num_val)
    for sub in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        os.makedirs(osp.join(out_dir, sub), exist_ok=True)
    palette = np.array(voc_palette(), np.uint8).flatten().tolist()
    cls_labels = {}
    rng = np.random.default_rng(seed)
    for split, n in (('train', num_train), ('val', num_val)):
        ids = []
        for i in range(n):
            img_id = f'toy_{split}_{i:05d}'
            h = int(rng.integers(size_range[0], size_range[1] + 1))
            w = int(rng.integers(size_range[0], size_range[1] + 1))
            img, mask, labels = make_toy_sample(rng, (h, w))
            cv2.imwrite(
                osp.join(out_dir, 'JPEGImages', img_id + '.jpg'),
                img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
            png = Image.fromarray(mask, mode='P')
            png.putpalette(palette)
            png.save(osp.join(out_dir, 'SegmentationClass', img_id + '.png'))
            cls_labels[img_id] = labels
            ids.append(img_id)
        with open(osp.join(out_dir, 'ImageSets/Segmentation', split + '.txt'),
                  'w') as f:
            f.write('\n'.join(ids) + '\n')
    np.save(osp.join(out_dir, 'cls_labels.npy'), cls_labels)
    with open(stamp_file, 'w') as f:
        f.write(stamp)
    return dict(train=num_train, val=num_val)


@DATASETS.register_module()
class WSSSToyDataset(WSSSDataset):
    """The synthetic set written by :func:`make_toy_voc` (4 classes).

    Example:
        >>> dataset = dict(
        ...     type='WSSSToyDataset', data_root='data/toy_voc',
        ...     ann_file='ImageSets/Segmentation/train.txt',
        ...     data_prefix=dict(img_path='JPEGImages',
        ...                      seg_map_path='SegmentationClass'))
    """
    METAINFO = dict(classes=TOY_CLASSES, palette=_palette(len(TOY_CLASSES)))
