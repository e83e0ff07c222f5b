from typing import List

import torch
from mmengine.logging import MessageHub
from torch import Tensor


def get_current_iter(default: int = 0) -> int:
    """The runner's current training iteration (0-based).

    mmengine's ``RuntimeInfoHook`` writes it into the message hub before every
    iteration; outside a runner (unit tests, scripts) ``default`` is returned
    unless the caller set ``MessageHub.get_current_instance().update_info(
    'iter', n)`` itself.
    """
    return MessageHub.get_current_instance().get_info('iter', default)


def stack_img_labels(data_samples: List, num_classes: int) -> Tensor:
    """(B, K) float multi-hot image labels from ``gt_img_labels`` fields.

    Raises:
        KeyError: when a sample has no image labels (the pipeline lacks
            ``PackWSSSInputs`` or the dataset gives no labels).
        ValueError: when the label length is not ``num_classes``.
    """
    labels = []
    for s in data_samples:
        if 'gt_img_labels' not in s:
            raise KeyError(
                'data sample has no `gt_img_labels`; train WSSS models with a '
                'weak-label dataset (e.g. WSSSVOCDataset) and PackWSSSInputs '
                f'(sample metainfo: {s.metainfo.get("img_path")})')
        lab = s.gt_img_labels
        if lab.numel() != num_classes:
            raise ValueError(
                f'image labels have {lab.numel()} classes but the model has '
                f'{num_classes} foreground classes '
                f'({s.metainfo.get("img_path")})')
        labels.append(lab.float().view(-1))
    return torch.stack(labels)


def valid_mask_of(data_samples: List, shape, device) -> Tensor:
    """(B, H, W) bool mask of the pixels that come from the image (not crop
    or batch padding). Samples without ``valid_mask`` count as all valid.

    Raises:
        ValueError: when a sample's mask does not have ``shape`` (the batch
            was padded by something other than ``WSSSDataPreprocessor``).
    """
    masks = []
    for s in data_samples:
        if 'valid_mask' not in s:
            masks.append(torch.ones(shape, dtype=torch.bool, device=device))
            continue
        m = s.valid_mask.data.to(device).bool().reshape(s.valid_mask.shape)
        if tuple(m.shape) != tuple(shape):
            raise ValueError(
                f'valid_mask {tuple(m.shape)} does not match the batch '
                f'{tuple(shape)}; pad batches with WSSSDataPreprocessor')
        masks.append(m)
    return torch.stack(masks)
