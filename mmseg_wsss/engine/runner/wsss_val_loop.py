import copy
from typing import Dict, List, Sequence, Union

import torch
from mmengine.evaluator import Evaluator
from mmengine.runner import ValLoop
from mmengine.runner.amp import autocast
from mmseg.registry import LOOPS
from torch.utils.data import DataLoader

from mmseg_wsss.models.segmentors import image_labels_known


@LOOPS.register_module()
class WSSSValLoop(ValLoop):
    """``ValLoop`` that also evaluates extra datasets in the same validation.

    WSSS reports two things at every validation: segmentation mIoU on the val
    set (the main dataloader/evaluator) and pseudo-mask quality on the *train*
    set. Each entry of ``extra_evals`` is ``dict(name=..., dataloader=...,
    evaluator=...)``; its metrics are added as ``<name>/<metric>`` to the
    validation results, so they are logged, written to the visualiser
    backends and usable by ``save_best``.

    An entry may set ``image_labels_known=True`` when its evaluator masks
    the predictions by the image labels anyway (``PseudoMaskMetric``): the
    model may then use them (GETAM computes maps only for the present
    classes, ~1.5 instead of K backward passes per image on VOC). Leave it
    False (default) for any label-free metric.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The val dataloader.
        evaluator (Evaluator | dict | list): The val evaluator.
        fp16 (bool): Validate under autocast. Defaults to False.
        extra_evals (Sequence[dict]): ``dict(name, dataloader, evaluator,
            image_labels_known=False)`` entries evaluated in the same
            validation. Defaults to ().

    Example::

        val_cfg = dict(
            type='WSSSValLoop',
            extra_evals=[dict(name='train',
                              dataloader=train_eval_dataloader,
                              evaluator=dict(type='PseudoMaskMetric'),
                              image_labels_known=True)])
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Evaluator, Dict, List],
                 fp16: bool = False,
                 extra_evals: Sequence[dict] = ()):
        super().__init__(runner, dataloader, evaluator, fp16)
        self.extra_evals = []
        for cfg in extra_evals:
            cfg = copy.deepcopy(cfg)
            missing = {'name', 'dataloader', 'evaluator'} - set(cfg)
            if missing:
                raise KeyError(f'extra_evals entry lacks {sorted(missing)}')
            loader = runner.build_dataloader(
                cfg['dataloader'], seed=runner.seed)
            evaluator = runner.build_evaluator(cfg['evaluator'])
            evaluator.dataset_meta = getattr(loader.dataset, 'metainfo', None)
            self.extra_evals.append((cfg['name'], loader, evaluator,
                                     bool(cfg.get('image_labels_known',
                                                  False))))

    def run(self) -> dict:
        self.runner.call_hook('before_val')
        self.runner.call_hook('before_val_epoch')
        self.runner.model.eval()
        self.val_loss.clear()
        for idx, data_batch in enumerate(self.dataloader):
            self.run_iter(idx, data_batch)
        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        for name, loader, evaluator, labels_known in self.extra_evals:
            for data_batch in loader:
                with torch.no_grad(), autocast(enabled=self.fp16), \
                        image_labels_known(self.runner.model, labels_known):
                    outputs = self.runner.model.val_step(data_batch)
                evaluator.process(data_samples=outputs, data_batch=data_batch)
            extra = evaluator.evaluate(len(loader.dataset))
            metrics.update({f'{name}/{k}': v for k, v in extra.items()})
        self.runner.call_hook('after_val_epoch', metrics=metrics)
        self.runner.call_hook('after_val')
        return metrics
