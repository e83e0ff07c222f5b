from typing import Optional, Sequence

from mmengine.dataset import pseudo_collate
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import DATASETS, HOOKS

from mmseg_wsss.visualization import (predict_panel, refine_setting,
                                      stack_panels)


@HOOKS.register_module()
class CAMVisualizationHook(Hook):
    """Every ``interval`` training iterations, draw CAM / pseudo-label /
    prediction panels of a few fixed images and hand them to the runner's
    visualizer (``runner.visualizer.add_image``): every configured
    backend gets them, e.g. ``LocalVisBackend`` (PNG files under
    ``<work_dir>/<timestamp>/vis_data/vis_image/``) and
    ``TensorboardVisBackend``.

    Args:
        interval (int): Iterations between two drawings. Default 500.
        indices (Sequence[int]): Which images of the dataset to draw.
            Default the first 4.
        dataset (dict, optional): Dataset config; default the runner's
            validation dataset. Use the train set with the test pipeline to
            watch pseudo-labels form.
        name (str): Image name in the visualizer. Default ``'cam_panels'``.
        at_end (bool): Also draw after the last iteration. Default True.

    Example::

        custom_hooks = [dict(type='CAMVisualizationHook', interval=300)]
        visualizer = dict(vis_backends=[dict(type='LocalVisBackend'),
                                        dict(type='TensorboardVisBackend')])
    """
    priority = 'LOW'

    def __init__(self,
                 interval: int = 500,
                 indices: Sequence[int] = (0, 1, 2, 3),
                 dataset: Optional[dict] = None,
                 name: str = 'cam_panels',
                 at_end: bool = True):
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.interval = interval
        self.indices = list(indices)
        self.dataset_cfg = dataset
        self.name = name
        self.at_end = at_end
        self._dataset = None

    def _get_dataset(self, runner):
        if self._dataset is None:
            self._dataset = DATASETS.build(self.dataset_cfg) \
                if self.dataset_cfg is not None \
                else runner.val_dataloader.dataset
            bad = [i for i in self.indices if i >= len(self._dataset)]
            if bad:
                raise IndexError(f'CAMVisualizationHook: indices {bad} out '
                                 f'of range for a dataset of '
                                 f'{len(self._dataset)} images')
        return self._dataset

    def draw(self, runner, step: int):
        """Draw the panels now (also usable outside training)."""
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        dataset = self._get_dataset(runner)
        meta = dataset.metainfo
        was_training = model.training
        model.eval()
        try:
            rows = [
                predict_panel(model, pseudo_collate([dataset[i]]),
                              meta['classes'], meta['palette'],
                              refine=refine_setting(
                                  getattr(model, 'test_cfg', None),
                                  getattr(model, 'train_cfg', None)))
                for i in self.indices
            ]
        finally:
            model.train(was_training)
        picture = stack_panels(rows)
        runner.visualizer.add_image(self.name, picture, step=step)
        return picture

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        it = runner.iter + 1
        last = it == runner.max_iters
        if self.every_n_train_iters(runner, self.interval) or (
                self.at_end and last):
            # every rank draws the same images: only rank 0 writes
            if runner.rank == 0:
                self.draw(runner, it)
