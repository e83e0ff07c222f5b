from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


@HOOKS.register_module()
class AssignmentNetEMAHook(Hook):
    """Update CoSA's assignment network after every optimizer step.

    ``xi <- m * xi + (1 - m) * theta`` from iteration 0 on (the momentum is
    the model's ``momentum``; ``interval`` > 1 updates less often). A hook
    rather than ``train_step``: under DDP mmengine's wrapper runs its own
    ``train_step`` and would bypass the model's.

    Args:
        interval (int): Update every ``interval`` iterations. Defaults to 1.

    Example:
        >>> custom_hooks = [dict(type='AssignmentNetEMAHook')]
    """
    priority = 'ABOVE_NORMAL'

    def __init__(self, interval: int = 1):
        self.interval = interval

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if (runner.iter + 1) % self.interval:
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        model.update_assignment_net()
