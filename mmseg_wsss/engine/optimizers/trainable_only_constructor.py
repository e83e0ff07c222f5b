import logging
from collections import Counter

from mmengine.logging import MMLogger, print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS


class _DropFrozenNotices(logging.Filter):
    """Drops mmengine's one-line-per-parameter "is skipped since its
    requires_grad=False" notices (expected here; summarised once)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return 'is skipped since its requires_grad=False' not in \
            record.getMessage()


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TrainableOnlyOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor, minus parameters that do not require
    gradients (CoSA's assignment network, frozen backbone stages).

    The default constructor puts every parameter into a group; AdamW skips
    those without gradients, but they still sit in the optimizer. This one
    removes them. Same ``paramwise_cfg`` as the default. Instead of one
    warning per frozen parameter (about 150 for a ViT-B CoSA) it logs one
    line counting them per top-level module; other warnings are kept.

    Example:
        >>> optim_wrapper = dict(
        ...     type='OptimWrapper', optimizer=dict(type='AdamW', lr=6e-5),
        ...     constructor='TrainableOnlyOptimWrapperConstructor')
    """

    def __call__(self, model) -> OptimWrapper:
        logger = MMLogger.get_current_instance()
        drop = _DropFrozenNotices()
        logger.addFilter(drop)
        try:
            optim_wrapper = super().__call__(model)
        finally:
            logger.removeFilter(drop)
        for group in optim_wrapper.optimizer.param_groups:
            group['params'] = [p for p in group['params'] if p.requires_grad]
        model = getattr(model, 'module', model)
        frozen = Counter(
            name.split('.')[0] for name, p in model.named_parameters()
            if not p.requires_grad)
        if frozen:
            print_log(
                f'optimizer: {sum(frozen.values())} parameters without '
                'gradient left out (' + ', '.join(
                    f'{k}: {v}' for k, v in sorted(frozen.items())) + ')',
                logger='current')
        return optim_wrapper
