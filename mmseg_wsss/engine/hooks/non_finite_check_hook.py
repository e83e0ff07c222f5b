"""Stop training on a non-finite loss or weight, on every rank together,
before a checkpoint of broken weights can be written."""
from typing import List

import torch
import torch.distributed as dist
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import AmpOptimWrapper
from mmseg.registry import HOOKS


def _all_finite(tensors: List[torch.Tensor]) -> torch.Tensor:
    """One bool tensor: every element of every tensor is finite (a fused
    norm per tensor, so one reduction and no per-tensor sync)."""
    tensors = [t.detach() for t in tensors if t.is_floating_point()]
    if not tensors:
        return torch.ones((), dtype=torch.bool)
    if all(t.dim() == 0 for t in tensors):
        return torch.stack(tensors).isfinite().all()
    if hasattr(torch, '_foreach_norm'):
        norms = torch._foreach_norm(tensors)
    else:  # pragma: no cover - old torch
        norms = [t.float().norm() for t in tensors]
    return torch.stack([n.float() for n in norms]).isfinite().all()


@HOOKS.register_module()
class NonFiniteCheckHook(Hook):
    """Stop the run when a logged loss term or a model weight becomes NaN or
    infinite.

    After every training iteration each rank checks its logged terms
    (``loss_*``, and any other logged value such as the thresholds) and its
    model weights and buffers; the flags are all-reduced, so all ranks stop
    together (one rank raising alone would hang the others in their next
    collective). The error names the iteration and the terms. It runs
    before the checkpoint and logger hooks, so the broken weights are never
    saved; :meth:`before_save_checkpoint` refuses any checkpoint whose state
    dict is not finite as a second line of defence.

    With mixed precision (``AmpOptimWrapper``, ``--amp``) an infinite loss
    is the loss scaler's business: it skips that step and lowers the scale,
    and the weights stay finite. Such iterations are tolerated (logged)
    until ``amp_patience`` of them come in a row.

    Args:
        check_weights (bool): Also check the weights every iteration (one
            fused norm over them). Defaults to True.
        amp_patience (int): Consecutive non-finite AMP iterations tolerated.
            Defaults to 20.

    Example:
        >>> default_hooks = dict(non_finite=dict(type='NonFiniteCheckHook'))
    """

    priority = 'VERY_HIGH'

    def __init__(self, check_weights: bool = True, amp_patience: int = 20):
        self.check_weights = check_weights
        self.amp_patience = amp_patience
        self._amp_skips = 0

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        terms = {
            name: torch.as_tensor(value).detach().float().mean()
            for name, value in (outputs or {}).items()
            if isinstance(value, (int, float, torch.Tensor))
            and torch.as_tensor(value).is_floating_point()
        }
        model = self._model(runner)
        # one check (one device sync) for all terms and one for the weights
        terms_ok = _all_finite(list(terms.values()))
        weights_ok = _all_finite(
            list(model.parameters()) + list(model.buffers())) \
            if self.check_weights else torch.ones((), dtype=torch.bool)
        bad_terms = {} if bool(terms_ok) else {
            k: float(v) for k, v in terms.items() if not torch.isfinite(v)}
        flags = torch.tensor([float(bool(bad_terms)),
                              float(not bool(weights_ok))])
        _, world = get_dist_info()
        if world > 1:
            device = next(model.parameters()).device \
                if dist.get_backend() == 'nccl' else 'cpu'
            flags = flags.to(device)
            dist.all_reduce(flags, op=dist.ReduceOp.MAX)
            flags = flags.cpu()
        loss_bad, weights_bad = bool(flags[0]), bool(flags[1])
        if not loss_bad and not weights_bad:
            self._amp_skips = 0
            return
        it = runner.iter + 1
        where = ', '.join(f'{k}={v}' for k, v in bad_terms.items()) or \
            'on another rank'
        amp = isinstance(runner.optim_wrapper, AmpOptimWrapper)
        if amp and not weights_bad:
            self._amp_skips += 1
            print_log(
                f'iteration {it}: non-finite loss ({where}); the AMP loss '
                'scaler skips this step (weights still finite; '
                f'{self._amp_skips} in a row, stopping after '
                f'{self.amp_patience})', 'current', 30)
            if self._amp_skips < self.amp_patience:
                return
        what = f'non-finite loss at iteration {it} ({where})' if loss_bad \
            else f'non-finite weights after iteration {it}'
        if loss_bad and weights_bad:
            what += ' and non-finite weights'
        raise FloatingPointError(
            f'{what}; training stopped on every rank and no checkpoint of '
            'these weights was written. Look at the image-level labels '
            '(values must be 0/1), the learning rate and the loss weights; '
            'then resume from the last good checkpoint (--resume) or '
            'restart.')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('state_dict', {})
        bad = [k for k, v in state.items() if isinstance(v, torch.Tensor)
               and v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise FloatingPointError(
                f'refusing to save a checkpoint with {len(bad)} non-finite '
                f'tensors (e.g. {", ".join(bad[:3])})')
