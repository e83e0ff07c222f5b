"""Train a WSSS model with the stock mmengine Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                          [--cfg-options k=v ...] [--launcher pytorch]

Same interface as mmseg's tools/train.py, plus: ``--resume`` takes an
optional checkpoint (default: the newest complete one in the work dir), and
multi-process runs work on CPU (gloo) as well as on GPUs
(``tools/dist_train.sh``).

What it guarantees on top of mmengine's Runner:

- one run per work dir: a second run in the same ``--work-dir`` stops at
  once, naming the first (an OS lock, released however the run ends);
- checkpoints and ``last_checkpoint`` are written atomically and old ones
  removed only after the new one is complete (``AtomicCheckpointHook``
  replaces the config's ``CheckpointHook``), so ``kill -9`` at any moment
  leaves a resumable work dir; ``--resume`` falls back to the newest
  complete checkpoint when ``last_checkpoint`` is empty or names a missing
  or broken file, and says so;
- a resume at or past ``max_iters`` stops with what to change instead of
  exiting 0 having trained nothing;
- config typos mmengine ignores (``paramwise_cfg`` keys, checkpoint hook
  arguments, top-level keys) stop the run or are warned about before the
  first iteration (``ConfigCheckHook``).
"""
import argparse
import logging
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

import mmseg_wsss  # noqa: F401  (registers modules, checkpoint fix)
from mmseg_wsss.engine import NothingToTrainError
from mmseg_wsss.utils import (add_trust_argument, apply_trust_arguments,
                              close_distributed, setup_cpu_distributed)
from mmseg_wsss.utils.run_guard import (find_resumable_checkpoint,
                                        lock_work_dir, release_work_dir)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a WSSS segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume training: from CKPT if given, else from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. train_cfg.max_iters=100')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_trust_argument(parser)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def add_safety_hooks(cfg: Config) -> None:
    """Give a config without them (e.g. a user's own mmseg config) the
    project's RNG-state, non-finite-check and config-check hooks; a config
    that sets ``default_hooks.rng_state=None`` (or ``non_finite=None``,
    ``config_check=None``) opts out. mmengine's ``CheckpointHook`` becomes
    ``AtomicCheckpointHook`` (same arguments)."""
    hooks = cfg.get('default_hooks') or {}
    ckpt = hooks.get('checkpoint')
    if ckpt is not None and ckpt.get('type') in ('CheckpointHook',
                                                 'mmengine.CheckpointHook'):
        ckpt['type'] = 'AtomicCheckpointHook'
    for name, kind in (('rng_state', 'RNGStateHook'),
                       ('non_finite', 'NonFiniteCheckHook'),
                       ('config_check', 'ConfigCheckHook')):
        if name not in hooks:
            hooks[name] = dict(type=kind)
            print_log(f'added default_hooks.{name}=dict(type={kind!r})',
                      'current')
        elif hooks[name] is None:  # mmengine refuses None for its non-
            hooks.pop(name)        # default names: drop the opted-out hook
            print_log(f'default_hooks.{name}=None: {kind} is off',
                      'current', logging.WARNING)
    cfg.default_hooks = hooks


def resolve_resume(cfg: Config, resume: str) -> None:
    """``--resume`` (``'auto'``: the latest checkpoint of the work dir) or
    ``--resume CKPT``. An explicit local CKPT that does not exist stops the
    run; no checkpoint to auto-resume from says so plainly and trains from
    scratch (mmengine alone logs "Auto resumed from ... None")."""
    if resume == 'auto':
        latest = find_resumable_checkpoint(
            cfg.work_dir,
            log=lambda m: print_log(f'--resume: {m}', 'current',
                                    logging.WARNING))
        if latest is None:
            print_log(
                f'--resume: no checkpoint in {cfg.work_dir} (no '
                '"last_checkpoint" file and no complete iter_*.pth / '
                'epoch_*.pth there); training from scratch',
                'current', logging.WARNING)
            cfg.resume, cfg.load_from = False, None
            return
        print_log(f'--resume: the latest checkpoint is {latest}', 'current')
        work = osp.realpath(cfg.work_dir)
        if '://' not in latest and not osp.realpath(latest).startswith(
                work + os.sep):
            print_log(
                f'--resume: {osp.join(cfg.work_dir, "last_checkpoint")} '
                f'points outside the work dir, to {latest}: resuming from '
                'that file. If that is not the run you meant, give the '
                'checkpoint explicitly (--resume CKPT) or use a fresh '
                '--work-dir.', 'current', logging.WARNING)
        cfg.resume, cfg.load_from = True, latest
        return
    if '://' not in resume and not osp.isfile(osp.expanduser(resume)):
        raise SystemExit(f'--resume {resume}: no such checkpoint file. Give '
                         'an existing .pth, or --resume alone for the '
                         f'latest checkpoint in the work dir ({cfg.work_dir})')
    cfg.resume, cfg.load_from = True, resume


def main():
    args = parse_args()
    apply_trust_arguments(args.trust_checkpoint)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        if cfg.optim_wrapper.type == 'AmpOptimWrapper':
            print_log('AMP is already enabled in the config', 'current',
                      logging.WARNING)
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.resume is not None:
        resolve_resume(cfg, args.resume)

    lock = None
    if int(os.environ.get('RANK', '0')) == 0:  # one lock per run
        lock, previous = lock_work_dir(cfg.work_dir)
        if previous:
            print_log(
                f'the work dir {cfg.work_dir} was held by a run that did not '
                f'end cleanly (killed?): {previous}. Its lock was released '
                'with it; taking it over.', 'current', logging.WARNING)
    add_safety_hooks(cfg)
    setup_cpu_distributed(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    try:
        runner.train()
    except NothingToTrainError as e:
        raise SystemExit(f'--resume: {e}') from None
    # free the runner (its DDP wrapper holds the process group), then meet
    # the other ranks and close the group: a gloo group still alive at
    # interpreter exit can abort a rank and fail the whole launch
    del runner
    close_distributed()
    release_work_dir(lock)


if __name__ == '__main__':
    main()
