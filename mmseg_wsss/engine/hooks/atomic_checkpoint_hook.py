import difflib
import inspect
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.runner import EpochBasedTrainLoop
from mmseg.registry import HOOKS

from mmseg_wsss.utils.run_guard import commit_file, write_atomic


class NothingToTrainError(RuntimeError):
    """The run resumed at or past its last iteration / epoch."""


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` whose saves survive a crash at any
    moment (``kill -9``, power loss, a full disk).

    For a local ``out_dir`` each checkpoint is written to a temporary file
    (``.iter_N.pth.partial``), ``fsync``-ed and renamed; ``last_checkpoint``
    is replaced atomically after that; and a checkpoint beyond
    ``max_keep_ckpts`` is removed only after the new one is complete --
    mmengine removes it first and writes in place, so a kill during the
    save with ``max_keep_ckpts=1`` leaves no usable checkpoint. Remote
    ``out_dir`` backends use mmengine's path unchanged.

    It also refuses, when it is built, keyword arguments that neither
    ``CheckpointHook`` nor ``Runner.save_checkpoint`` takes (mmengine keeps
    them and fails at the first save, after the work is done), and stops a
    run that resumed at or past ``max_iters`` / ``max_epochs`` instead of
    exiting 0 having trained nothing.

    ``tools/train.py`` turns a config's ``CheckpointHook`` into this one.
    Arguments as ``CheckpointHook``.

    Example:
        >>> default_hooks = dict(checkpoint=dict(
        ...     type='AtomicCheckpointHook', by_epoch=False, interval=2000,
        ...     max_keep_ckpts=1))
    """

    def __init__(self, *args, **kwargs):
        known = set(inspect.signature(CheckpointHook.__init__).parameters)
        known -= {'self', 'kwargs'}
        unknown = sorted(k for k in kwargs if k not in known)
        if unknown:
            hints = []
            for k in unknown:
                close = difflib.get_close_matches(k, sorted(known), n=1)
                hints.append(f'{k!r}' + (f' (did you mean {close[0]!r}?)'
                                         if close else ''))
            raise TypeError(
                f'default_hooks.checkpoint: unknown argument(s) '
                f'{", ".join(hints)}; CheckpointHook takes '
                f'{", ".join(sorted(known))}')
        super().__init__(*args, **kwargs)

    def _local(self) -> bool:
        return isinstance(getattr(self, 'file_backend', None), LocalBackend)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self._local() and is_main_process() and osp.isdir(self.out_dir):
            for name in os.listdir(self.out_dir):  # a killed save's leftover
                if name.endswith('.partial'):
                    os.remove(osp.join(self.out_dir, name))
        loop = runner.train_loop
        by_epoch = isinstance(loop, EpochBasedTrainLoop)
        done, total = ((runner.epoch, loop.max_epochs) if by_epoch else
                       (runner.iter, loop.max_iters))
        if done > 0 and done >= total:
            unit = 'epoch' if by_epoch else 'iteration'
            key = 'max_epochs' if by_epoch else 'max_iters'
            raise NothingToTrainError(
                f'the run resumed at {unit} {done} and train_cfg.{key} is '
                f'{total}: there is nothing left to train. To train on, '
                f'raise it (--cfg-options train_cfg.{key}=N with N > {done}, '
                'and the schedulers\' end with it); to start over, use '
                'another --work-dir or drop --resume.')

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not self._local():
            return super()._save_checkpoint_with_step(runner, step, meta)
        stale = None
        if self.max_keep_ckpts > 0 and not (
                self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                stale = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        name = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, name)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        partial = f'.{name}.partial'
        runner.save_checkpoint(
            self.out_dir,
            partial,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        commit_file(osp.join(self.out_dir, partial), self.last_ckpt)
        write_atomic(osp.join(runner.work_dir, 'last_checkpoint'),
                     self.last_ckpt)
        if stale is not None and stale != step:  # only now: the new one is
            old = osp.join(self.out_dir, self.filename_tmpl.format(stale))
            if osp.isfile(old):                  # complete on disk
                os.remove(old)
