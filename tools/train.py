"""Train a WSSS model with the stock mmengine Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                          [--cfg-options k=v ...] [--launcher pytorch]

Same interface as mmseg's tools/train.py, plus: ``--resume`` takes an
optional checkpoint (default: the latest in the work dir), and multi-process
runs work on CPU (gloo) as well as on GPUs (``tools/dist_train.sh``).
"""
import argparse
import logging
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner, find_latest_checkpoint

import mmseg_wsss  # noqa: F401  (registers modules, checkpoint fix)
from mmseg_wsss.utils import (add_trust_argument, apply_trust_arguments,
                              close_distributed, setup_cpu_distributed)


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
    project's RNG-state and non-finite-check hooks; a config that sets
    ``default_hooks.rng_state=None`` (or ``non_finite=None``) opts out."""
    hooks = cfg.get('default_hooks') or {}
    for name, kind in (('rng_state', 'RNGStateHook'),
                       ('non_finite', 'NonFiniteCheckHook')):
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
        latest = find_latest_checkpoint(cfg.work_dir)
        if latest is None:
            print_log(
                f'--resume: no checkpoint in {cfg.work_dir} (no '
                '"last_checkpoint" file there); training from scratch',
                'current', logging.WARNING)
            cfg.resume, cfg.load_from = False, None
            return
        print_log(f'--resume: the latest checkpoint is {latest}', 'current')
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

    add_safety_hooks(cfg)
    setup_cpu_distributed(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    runner.train()
    # free the runner (its DDP wrapper holds the process group), then meet
    # the other ranks and close the group: a gloo group still alive at
    # interpreter exit can abort a rank and fail the whole launch
    del runner
    close_distributed()


if __name__ == '__main__':
    main()
