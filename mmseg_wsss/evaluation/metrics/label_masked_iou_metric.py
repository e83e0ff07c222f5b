from typing import Sequence

import torch
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS


@METRICS.register_module()
class LabelMaskedIoUMetric(IoUMetric):
    """mIoU after removing classes absent from the ground-truth image labels.

    The logits of every foreground class that the image's ground-truth
    image-level labels do not contain are set to -inf before the argmax
    (background is kept). This is the number the CoSA reference reports
    (76.2 VOC val); it uses test-time label information, so always report it
    beside mmseg's label-free :class:`IoUMetric` (``methods.md`` §1.8).

    Arguments as :class:`mmseg.evaluation.IoUMetric`; results are prefixed
    ``label_masked/`` by default.

    Example:
        >>> val_evaluator = [
        ...     dict(type='IoUMetric', iou_metrics=['mIoU']),
        ...     dict(type='LabelMaskedIoUMetric', iou_metrics=['mIoU'])]
    """
    default_prefix = 'label_masked'

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            logits = sample['seg_logits']['data']
            labels = sample['gt_img_labels'].to(logits.device).bool()
            keep = torch.cat([labels.new_ones(1), labels])
            if keep.numel() != logits.shape[0]:
                raise ValueError(
                    f'{keep.numel() - 1} image labels for '
                    f'{logits.shape[0]} segmentation classes')
            masked = logits.masked_fill(~keep[:, None, None], float('-inf'))
            pred = masked.argmax(dim=0)
            label = sample['gt_sem_seg']['data'].squeeze().to(pred)
            self.results.append(
                self.intersect_and_union(pred, label, num_classes,
                                         self.ignore_index))
