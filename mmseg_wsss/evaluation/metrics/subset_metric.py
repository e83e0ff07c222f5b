import copy
import os.path as osp
from typing import Dict, Optional, Sequence, Union

import torch
from mmengine.dist import all_reduce
from mmengine.evaluator import BaseMetric
from mmseg.registry import METRICS


def read_ids(ids: Union[str, Sequence[str]], name: str) -> frozenset:
    """Image ids from a list or a text file (one id per line)."""
    if isinstance(ids, str):
        if not osp.isfile(ids):
            raise FileNotFoundError(
                f'SubsetMetric: the id list of subset {name!r} is not a file: '
                f'{ids!r} (give a list of image ids or the path of a text '
                'file with one id per line, relative to the working '
                'directory)')
        with open(ids) as f:
            ids = [line.strip() for line in f]
    ids = [str(i) for i in ids if str(i).strip()]
    if not ids:
        raise ValueError(f'SubsetMetric: subset {name!r} has no image ids')
    return frozenset(ids)


def image_id(sample: dict) -> str:
    """The id of a prediction's image: its file name without extension."""
    path = sample.get('img_path')
    if path is None:
        raise KeyError('SubsetMetric needs img_path in the predictions '
                       '(mmseg data samples carry it)')
    return osp.splitext(osp.basename(path))[0]


@METRICS.register_module()
class SubsetMetric(BaseMetric):
    """Evaluate one metric on the whole set and on named subsets of it, in
    the same pass.

    Used to choose a recipe on one part of a small labelled set and report
    it on the other (coco128: ``select`` and ``report`` halves), without a
    second forward pass. The whole-set results keep the inner metric's own
    names (``mIoU``, ``cam/mIoU``, ...); a subset's are prefixed with its
    name (``report/cam/mIoU``). A prediction is matched to a subset by its
    image id (the file name of ``img_path`` without extension).

    Under DDP each subset is gathered like the inner metric itself; the
    sampler's padding duplicates count as they do for the whole set.

    Args:
        metric (dict): The inner metric's config.
        subsets (dict): ``name -> ids``: a list of image ids or the path of
            a text file with one id per line.
        whole (bool): Also report the whole set (default True).

    Example:
        >>> halves = dict(select='select.txt', report='report.txt')
        >>> val_evaluator = [dict(type='SubsetMetric', subsets=halves,
        ...                       metric=dict(type='IoUMetric',
        ...                                   iou_metrics=['mIoU']))]
    """

    def __init__(self,
                 metric: dict,
                 subsets: Dict[str, Union[str, Sequence[str]]],
                 whole: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not subsets:
            raise ValueError('SubsetMetric needs at least one subset')
        self.subset_ids = {
            name: read_ids(ids, name)
            for name, ids in subsets.items()
        }
        names = (['whole'] if whole else []) + list(self.subset_ids)
        self.metrics = {
            name: METRICS.build(copy.deepcopy(metric))
            for name in names
        }
        self.whole = whole
        self.seen = {name: 0 for name in self.subset_ids}

    @property
    def dataset_meta(self) -> Optional[dict]:
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, meta: Optional[dict]) -> None:
        self._dataset_meta = meta
        for m in getattr(self, 'metrics', {}).values():
            m.dataset_meta = meta

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            one = [sample]
            if self.whole:
                self.metrics['whole'].process(data_batch, one)
            iid = image_id(sample)
            for name, ids in self.subset_ids.items():
                if iid in ids:
                    self.seen[name] += 1
                    self.metrics[name].process(data_batch, one)

    def compute_metrics(self, results: list) -> dict:
        raise NotImplementedError('SubsetMetric.evaluate runs its inner '
                                  'metrics')

    def evaluate(self, size: int) -> dict:
        counts = torch.tensor([self.seen[n] for n in self.subset_ids])
        all_reduce(counts)
        seen = dict(zip(self.subset_ids, counts.tolist()))
        empty = [n for n, count in seen.items() if count == 0]
        if empty:
            raise ValueError(
                f'SubsetMetric: no prediction belongs to subset(s) {empty}: '
                'their ids do not match the image file names of this '
                'dataset (ids are file names without extension)')
        out = {}
        for name, metric in self.metrics.items():
            res = metric.evaluate(size if name == 'whole' else seen[name])
            if name == 'whole':
                out.update(res)
            else:
                out.update({f'{name}/{k}': v for k, v in res.items()})
        self.seen = {name: 0 for name in self.subset_ids}
        return out
