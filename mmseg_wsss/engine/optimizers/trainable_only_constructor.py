from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TrainableOnlyOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor, minus parameters that do not require
    gradients (CoSA's assignment network, frozen backbone stages).

    The default constructor puts every parameter into a group; AdamW skips
    those without gradients, but they still sit in the optimizer. This one
    removes them. Same ``paramwise_cfg`` as the default.
    """

    def __call__(self, model) -> OptimWrapper:
        optim_wrapper = super().__call__(model)
        for group in optim_wrapper.optimizer.param_groups:
            group['params'] = [p for p in group['params'] if p.requires_grad]
        return optim_wrapper
