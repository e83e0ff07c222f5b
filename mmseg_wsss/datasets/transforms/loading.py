import numpy as np
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadWSSSAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` plus a value check; a sample without a
    mask path (inference on a bare image) passes through unchanged.

    Raises ``ValueError`` naming the file when a mask has values outside
    ``0..K`` and 255 (K = ``num_fg_classes`` from the weak-label dataset), the
    usual sign of an RGB-coloured mask or of a mask from another dataset,
    and when the mask's size differs from its image's (``ori_shape``, set
    by ``LoadImageFromFile``), naming both files.

    Example:
        >>> test_pipeline = [dict(type='LoadImageFromFile'),
        ...                  dict(type='LoadWSSSAnnotations'),
        ...                  dict(type='PackWSSSInputs')]
    """

    def transform(self, results: dict) -> dict:
        if 'seg_map_path' not in results:
            # inference on a bare image (mmseg's inference_model and
            # MMSegInferencer drop only their own LoadAnnotations)
            return results
        results = super().transform(results)
        seg, hw = results.get('gt_seg_map'), results.get('ori_shape')
        if seg is not None and hw is not None and \
                tuple(seg.shape[:2]) != tuple(hw[:2]):
            raise ValueError(
                f'{results.get("seg_map_path")}: mask size '
                f'{seg.shape[1]}x{seg.shape[0]} differs from its image '
                f'{results.get("img_path")} ({hw[1]}x{hw[0]}); a mask must '
                "have its image's size, pixel for pixel. "
                'tools/check_dataset.py CONFIG lists every such pair.')
        k = results.get('num_fg_classes')
        if k is not None and 'gt_seg_map' in results:
            seg = results['gt_seg_map']
            bad = np.unique(seg[(seg > k) & (seg != 255)])
            if bad.size:
                raise ValueError(
                    f'{results.get("seg_map_path")}: mask values '
                    f'{bad.tolist()} are outside 0..{k} and 255')
        return results
