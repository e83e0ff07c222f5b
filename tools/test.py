"""Test (evaluate) a trained WSSS model with the stock mmengine Runner.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR]
                         [--show-dir DIR] [--crf-workers N]
                         [--cfg-options k=v ...]

Same interface as mmseg's tools/test.py. With ``model.test_cfg.crf`` set, the
DenseCRF of each image runs in a pool of worker processes while the model
predicts the next batches (``WSSSTestLoop``; same predictions as the serial
CRF). Checkpoints written by torch >= 2.6
runs load because importing mmseg_wsss installs the compatibility loader.

``--out DIR`` is finished by ``DIR/.complete.json``, written after the last
mask; a folder that holds files without it (an interrupted run, or files
of something else) is refused before any work, so an incomplete set of
masks never passes for a complete one. Ctrl-C or SIGTERM stops the CRF
workers at once and exits with status 130.
"""
import argparse
import datetime
import json
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import mmseg_wsss  # noqa: F401
from mmseg_wsss.utils import (add_trust_argument, apply_trust_arguments,
                              close_distributed, setup_cpu_distributed)
from mmseg_wsss.utils.run_guard import write_atomic
from mmseg_wsss.utils.workers import interruptible

COMPLETE = '.complete.json'


def check_out_dir(out: str) -> None:
    """Refuse an ``--out`` folder with files but no completion marker;
    a complete one is overwritten (its marker goes first)."""
    if not osp.isdir(out):
        return
    marker = osp.join(out, COMPLETE)
    if osp.isfile(marker):
        os.remove(marker)  # rewritten when this run has finished
        return
    files = [f for f in os.listdir(out) if not f.startswith('.')]
    if files:
        raise SystemExit(
            f'--out {out} already holds {len(files)} files but no {COMPLETE}'
            ': it is the output of an interrupted run (or of something '
            'else), and mixing it with this run would pass an incomplete '
            f'set of masks for a complete one. Remove it (rm -r {out}) or '
            'give another --out.')


def parse_args():
    parser = argparse.ArgumentParser(description='Test a WSSS segmentor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where the metrics are saved')
    parser.add_argument(
        '--out', help='save the predicted masks (PNG) to this folder')
    parser.add_argument(
        '--show-dir', help='save prediction pictures to this folder')
    parser.add_argument(
        '--crf-workers', type=int,
        help='worker processes for the test-time DenseCRF '
        '(model.test_cfg.crf), per rank; 0 runs it serially in the model. '
        'Default: the CPU cores divided by the ranks')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. model.test_cfg.scales=[1.0]')
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
    cfg.load_from = args.checkpoint
    if args.show_dir:
        vis = cfg.default_hooks.visualization
        vis.draw = True
        vis.interval = 1
        cfg.visualizer.save_dir = args.show_dir
    if args.out:
        for ev in (cfg.test_evaluator if isinstance(cfg.test_evaluator, list)
                   else [cfg.test_evaluator]):
            if ev['type'] == 'IoUMetric':
                ev['output_dir'] = args.out
    if cfg.get('test_cfg') is None:
        cfg.test_cfg = dict(type='TestLoop')
    if cfg.test_cfg.get('type', 'TestLoop') in ('TestLoop', 'WSSSTestLoop'):
        cfg.test_cfg['type'] = 'WSSSTestLoop'
        if args.crf_workers is not None:
            cfg.test_cfg['crf_workers'] = args.crf_workers
    elif args.crf_workers is not None:
        raise SystemExit(f'--crf-workers needs test_cfg.type=TestLoop or '
                         f'WSSSTestLoop, the config has '
                         f'{cfg.test_cfg["type"]!r}')
    rank = int(os.environ.get('RANK', '0'))
    if args.out and rank == 0:
        check_out_dir(args.out)
    setup_cpu_distributed(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    try:
        with interruptible():
            runner.test()
    except KeyboardInterrupt:
        print('\ninterrupted' + (f': {args.out} is incomplete (no '
                                  f'{COMPLETE}); remove it before testing '
                                  'again' if args.out else ''),
              file=sys.stderr, flush=True)
        sys.exit(130)
    if args.out and rank == 0:
        write_atomic(osp.join(args.out, COMPLETE), json.dumps(dict(
            config=args.config, checkpoint=args.checkpoint,
            masks=sum(f.endswith('.png') for f in os.listdir(args.out)),
            finished=datetime.datetime.now().isoformat(timespec='seconds')),
            indent=2))
    # free the runner (its DDP wrapper holds the process group), then meet
    # the other ranks and close the group: a gloo group still alive at
    # interpreter exit can abort a rank and fail the whole launch
    del runner
    close_distributed()


if __name__ == '__main__':
    main()
