import numpy as np
import torch
from mmcv.transforms import to_tensor
from mmengine.structures import PixelData
from mmseg.datasets.transforms import PackSegInputs
from mmseg.registry import TRANSFORMS


def _img_to_tensor(img: np.ndarray) -> torch.Tensor:
    if img.ndim < 3:
        img = img[..., None]
    return to_tensor(np.ascontiguousarray(img.transpose(2, 0, 1)))


@TRANSFORMS.register_module()
class PackWSSSInputs(PackSegInputs):
    """:class:`PackSegInputs` plus what WSSS needs.

    - ``inputs``: the image tensor, or ``{'weak': img, 'strong':
      img_strong}`` when ``img_strong`` (from
      :class:`StrongPhotometricView`) is present;
    - ``data_sample.gt_img_labels``: (K,) float image-level labels;
    - ``data_sample.valid_mask``: PixelData (1, H, W) uint8, 1 = image pixel;
    - ``data_sample.gt_sem_seg`` when a mask was loaded (evaluation only:
      WSSS models never train on it).

    Args:
        meta_keys (tuple[str]): Meta information copied into each data
            sample, as in :class:`PackSegInputs`.

    Example:
        >>> train_pipeline = [dict(type='LoadImageFromFile'),
        ...                   dict(type='RandomCropPad', crop_size=448),
        ...                   dict(type='PackWSSSInputs')]
    """

    def __init__(self,
                 meta_keys=('img_path', 'seg_map_path', 'img_id', 'ori_shape',
                            'img_shape', 'pad_shape', 'scale_factor', 'flip',
                            'flip_direction', 'reduce_zero_label')):
        super().__init__(meta_keys=meta_keys)

    def transform(self, results: dict) -> dict:
        packed = super().transform(results)
        sample = packed['data_samples']
        if 'img_strong' in results:
            packed['inputs'] = dict(
                weak=packed['inputs'],
                strong=_img_to_tensor(results['img_strong']))
        if 'img_labels' in results:
            sample.gt_img_labels = torch.as_tensor(
                np.asarray(results['img_labels'], dtype=np.float32))
        if 'valid_mask' in results:
            sample.valid_mask = PixelData(
                data=to_tensor(results['valid_mask'][None].astype(np.uint8)))
        return packed
