import collections
import os
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.dist import get_world_size
from mmengine.logging import print_log
from mmengine.runner import TestLoop
from mmengine.runner.amp import autocast
from mmseg.registry import LOOPS
from torch.utils.data import DataLoader

from mmseg_wsss.utils.workers import WorkerPool

_CRF = None


def _init_crf_worker(crf_args: dict) -> None:
    global _CRF
    torch.set_num_threads(1)
    from mmseg_wsss.evaluation.crf import DenseCRF
    _CRF = DenseCRF(**crf_args)


def _refine(job):
    img, probs = job
    return _CRF(img, probs)


@LOOPS.register_module()
class WSSSTestLoop(TestLoop):
    """``TestLoop`` that runs the test-time DenseCRF (``model.test_cfg.crf``)
    in a pool of worker processes.

    The model's ``predict`` leaves the CRF to the loop (it hands over the
    images and probabilities it would refine); the workers refine them while
    the model predicts the next batches, and each batch is finished --
    refined probabilities post-processed exactly as ``predict`` does,
    evaluator, hooks -- in order once its images are back. The predictions
    equal the serial path's. Without ``test_cfg.crf``, or with
    ``crf_workers=0``, it is mmengine's ``TestLoop``; mmseg's inference APIs
    (which call ``predict`` directly) keep the serial CRF.

    Args:
        crf_workers (int, optional): Worker processes per rank. Default:
            the CPU cores divided by the number of ranks (at least 1).
        max_pending (int, optional): Batches in flight before the loop
            waits (bounds the memory of queued probabilities). Default
            ``2 * crf_workers``.

    Example:
        >>> test_cfg = dict(type='WSSSTestLoop', crf_workers=8)
        >>> model = dict(test_cfg=dict(crf=True))
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 evaluator,
                 fp16: bool = False,
                 crf_workers: Optional[int] = None,
                 max_pending: Optional[int] = None):
        super().__init__(runner, dataloader, evaluator, fp16)
        if crf_workers is None:
            crf_workers = max(1, (os.cpu_count() or 1) // get_world_size())
        self.crf_workers = int(crf_workers)
        self.max_pending = max_pending or 2 * max(self.crf_workers, 1)

    def _model(self):
        return getattr(self.runner.model, 'module', self.runner.model)

    def run(self) -> dict:
        model = self._model()
        test_cfg = getattr(model, 'test_cfg', None) or {}
        if self.crf_workers <= 0 or test_cfg.get('crf') in (None, False) \
                or not hasattr(model, 'crf_args'):
            return super().run()
        # fail here, with the install hint, if pydensecrf is missing: a
        # worker whose initializer raises is restarted by the pool forever
        model.crf_module()
        print_log(f'test-time DenseCRF in {self.crf_workers} worker '
                  'process(es)', logger='current')
        pool = WorkerPool(self.crf_workers, _init_crf_worker,
                          (model.crf_args(), ))
        self._pool = pool
        self._pending = collections.deque()
        try:
            metrics = super().run()  # run_iter below; flushed before metrics
        except BaseException:
            # Ctrl-C, SIGTERM (tools/test.py turns it into an interrupt) or
            # an error: stop the workers now, without waiting on them
            pool.kill()
            raise
        finally:
            self._pool = None
        pool.close()
        return metrics

    @torch.no_grad()
    def run_iter(self, idx, data_batch: Sequence[dict]) -> None:
        if getattr(self, '_pool', None) is None:
            return super().run_iter(idx, data_batch)
        self.runner.call_hook(
            'before_test_iter', batch_idx=idx, data_batch=data_batch)
        model = self._model()
        model._crf_jobs = []
        try:
            with autocast(enabled=self.fp16):
                outputs = self.runner.model.test_step(data_batch)
            jobs = model._crf_jobs
        finally:
            model._crf_jobs = None
        # one CRF batch per step, or one per image when the model predicted
        # the images of a padded batch one by one (own_padded_sizes)
        imgs = [img for batch in jobs for img in batch[0]]
        probs = [p for batch in jobs for p in batch[1]]
        if len(imgs) != len(outputs):
            raise RuntimeError(f'WSSSTestLoop: the model handed over CRF '
                               f'inputs of {len(imgs)} images for '
                               f'{len(outputs)} predictions')
        results = [
            self._pool.apply_async(_refine, ((img, p), ))
            for img, p in zip(imgs, probs)
        ]
        self._pending.append((idx, data_batch, outputs, results))
        while len(self._pending) > self.max_pending:
            self._finish_one()
        if idx == len(self.dataloader) - 1:
            while self._pending:
                self._finish_one()

    def _finish_one(self) -> None:
        idx, data_batch, outputs, results = self._pending.popleft()
        model = self._model()
        for sample, res in zip(outputs, results):
            refined = torch.from_numpy(res.get())
            logits = sample.seg_logits.data
            model.postprocess_maps(
                dict(seg_logits=refined[None].to(logits)), [sample])
        outputs = self._update_losses(outputs)
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook(
            'after_test_iter',
            batch_idx=idx,
            data_batch=data_batch,
            outputs=outputs)

    def _update_losses(self, outputs: List) -> List:
        try:  # mmengine >= 0.10.5 logs test losses
            from mmengine.runner.loops import _update_losses
        except ImportError:  # pragma: no cover - older mmengine
            return outputs
        outputs, self.test_loss = _update_losses(outputs, self.test_loss)
        return outputs
