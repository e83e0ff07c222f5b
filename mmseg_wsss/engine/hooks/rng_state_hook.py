"""Bit-exact resume: the random-number-generator states of every rank go
into checkpoints and come back on ``--resume``."""
import random
from typing import List, Optional

import numpy as np
import torch
import torch.distributed as dist
from mmengine.dist import get_dist_info
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS


def get_rng_states() -> dict:
    """This process's RNG states: torch CPU, the current CUDA device (when
    CUDA is in use), numpy's global generator and Python's ``random``."""
    cuda = None
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = torch.cuda.get_rng_state()
    return dict(torch=torch.get_rng_state(), cuda=cuda,
                numpy=np.random.get_state(), python=random.getstate())


def set_rng_states(states: dict) -> None:
    """Restore what :func:`get_rng_states` returned."""
    torch.set_rng_state(states['torch'].cpu())
    if states.get('cuda') is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(states['cuda'].cpu())
    np.random.set_state(states['numpy'])
    random.setstate(states['python'])


class _RestoreBeforeFetch:
    """Wraps a train loop's data iterator: after ``skip`` batches (the ones
    mmengine replays to reach the resumed iteration) the RNG states are set,
    then the next batch is fetched -- the point at which the uninterrupted
    run continued after saving the checkpoint."""

    def __init__(self, iterator, skip: int, states: dict):
        self._iterator, self._skip, self._states = iterator, skip, states

    def __iter__(self):
        return self

    def __next__(self):
        if self._skip == 0 and self._states is not None:
            set_rng_states(self._states)
            self._states = None
        self._skip -= 1
        return next(self._iterator)

    def __getattr__(self, name):
        return getattr(self._iterator, name)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save every rank's RNG states in checkpoints and restore them on
    resume, so that a resumed run equals the uninterrupted one bit for bit
    (drop path, random crops and flips, anything drawn from the global
    generators).

    - Just before the :class:`~mmengine.hooks.CheckpointHook` saves (same
      interval logic), every rank's states are gathered (mmengine writes
      checkpoints from rank 0 only) and stored as
      ``checkpoint['rng_states'] = dict(world_size=N, states=[...])``.
    - On resume, each rank's states are set right before the first batch
      after the resumed iteration is fetched (after mmengine replays the
      data loader to that point).
    - With ``isolate_val`` (default), validation runs leave the training
      RNG untouched, so training with and without validation, and across a
      resume at a validation iteration, draws the same numbers.

    A checkpoint without RNG states (older files) resumes as before, with a
    warning that the run is not bit-exact; so does a resume with another
    number of processes.

    Args:
        isolate_val (bool): Restore the RNG states after each validation.
            Defaults to True.

    Example:
        >>> default_hooks = dict(rng_state=dict(type='RNGStateHook'))
    """

    priority = 89  # right before CheckpointHook (VERY_LOW = 90)

    def __init__(self, isolate_val: bool = True):
        self.isolate_val = isolate_val
        self._pending = None  # (tag, states of all ranks)
        self._loaded = None
        self._val_states = None

    # ------------------------------------------------------------ saving
    @staticmethod
    def _checkpoint_hook(runner) -> Optional[CheckpointHook]:
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook):
                return hook
        return None

    def _gather(self) -> List[dict]:
        local = get_rng_states()
        _, world = get_dist_info()
        if world == 1:
            return [local]
        out = [None] * world
        dist.all_gather_object(out, local)
        return out

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        hook = self._checkpoint_hook(runner)
        if hook is None or hook.by_epoch:
            return
        if hook.every_n_train_iters(runner, hook.interval, hook.save_begin) \
                or (hook.save_last and hook.is_last_train_iter(runner)):
            self._pending = ((runner.epoch, runner.iter + 1), self._gather())

    def after_train_epoch(self, runner) -> None:
        hook = self._checkpoint_hook(runner)
        if hook is None or not hook.by_epoch:
            return
        if hook.every_n_epochs(runner, hook.interval, hook.save_begin) or \
                (hook.save_last and hook.is_last_train_epoch(runner)):
            self._pending = ((runner.epoch + 1, runner.iter), self._gather())

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.get('meta', {})
        tag = (meta.get('epoch'), meta.get('iter'))
        _, world = get_dist_info()
        if self._pending is not None and self._pending[0] == tag:
            states = self._pending[1]
        elif world == 1:
            states = [get_rng_states()]
        else:  # a save outside the CheckpointHook's schedule
            print_log(
                'RNGStateHook: this checkpoint was saved outside the '
                'checkpoint interval; only rank 0 RNG states are stored '
                '(resuming from it is not bit-exact)', 'current', 30)
            states = [get_rng_states()] + [None] * (world - 1)
        checkpoint['rng_states'] = dict(world_size=world, states=states)

    # ------------------------------------------------------------ resuming
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get('rng_states', 'missing')

    def before_train(self, runner) -> None:
        loaded, self._loaded = self._loaded, None
        if not getattr(runner, '_resume', False) or loaded is None:
            return  # a fresh run, or load_from (weights only)
        rank, world = get_dist_info()
        if loaded == 'missing':
            print_log(
                'the resumed checkpoint holds no RNG states (written '
                'without RNGStateHook): the run continues, but not bit for '
                'bit as it would have without the interruption', 'current',
                30)
            return
        states = loaded['states']
        if loaded['world_size'] != world or states[rank] is None:
            print_log(
                f"the checkpoint's RNG states are from {loaded['world_size']}"
                f' process(es), this run has {world}: not restored (the '
                'resumed run is not bit-exact)', 'current', 30)
            return
        loop = runner.train_loop
        skip = getattr(loop, '_iter', 0)
        if hasattr(loop, 'dataloader_iterator') and skip > 0:
            loop.dataloader_iterator = _RestoreBeforeFetch(
                loop.dataloader_iterator, skip, states[rank])
        else:  # epoch-based loops resume at an epoch start
            set_rng_states(states[rank])
        print_log('RNG states restored from the checkpoint', 'current')

    # ------------------------------------------------------------ validation
    def before_val(self, runner) -> None:
        if self.isolate_val:
            self._val_states = get_rng_states()

    def after_val(self, runner) -> None:
        if self._val_states is not None:
            set_rng_states(self._val_states)
            self._val_states = None
