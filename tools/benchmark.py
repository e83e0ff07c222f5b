"""Training-step time and peak memory of a WSSS config, as a ratio to a
plain supervised step of the same backbone, decode head and batch (built in
the same process); inference images per second. JSON output.

    python tools/benchmark.py configs/cosa/cosa_tiny_toy.py
    python tools/benchmark.py configs/cosa/cosa_vitb_voc.py --device cuda \\
        --batch-size 4 --out work_dirs/bench/cosa_vitb.json

Beside each measured ratio stands the compute-ideal one (FLOPs of the step
over FLOPs of the supervised step), so a ratio reads "measured / ideal".

Batches are synthetic (random pixels and labels, the config's crop size), so
no dataset is needed; the step counts past the model's warm-up (pseudo-label
passes and all losses run). See ``mmseg_wsss/apis/benchmark.py`` for how
memory is measured.
"""
import argparse
import json
import logging
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope

import mmseg_wsss  # noqa: F401
from mmseg_wsss.apis.benchmark import bench_dynamic_threshold, run_benchmark


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', nargs='?')
    parser.add_argument(
        '--dynamic-threshold', action='store_true',
        help='only time DynamicThreshold.update at 10k / 100k / 1M queued '
        'samples, the exact sample fit vs the histogram fit (no config)')
    parser.add_argument(
        '--device',
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='cpu or cuda (default: cuda when available)')
    parser.add_argument(
        '--batch-size', type=int, help='default: the train dataloader\'s')
    parser.add_argument(
        '--crop-size', type=int, nargs=2, metavar=('H', 'W'),
        help='default: the config\'s crop_size')
    parser.add_argument('--steps', type=int, default=10,
                        help='timed training steps (default 10)')
    parser.add_argument('--warmup', type=int, default=3,
                        help='untimed steps first (default 3)')
    parser.add_argument('--infer-images', type=int, default=5,
                        help='images for the inference speed (0: skip)')
    parser.add_argument('--threads', type=int,
                        help='torch CPU threads (default: torch\'s)')
    parser.add_argument(
        '--paper-scales', action='store_true',
        help='also measure the pseudo-label passes at the papers\' '
        'scales (1.0, 0.5, 1.5) where the config uses fewer')
    parser.add_argument(
        '--attn-all-blocks', action='store_true',
        help='also measure with attention materialised in every block '
        '(the behaviour before ACR read only its blocks)')
    parser.add_argument('--out', help='also write the JSON here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.dynamic_threshold:
        result = dict(dynamic_threshold_ms_per_call=bench_dynamic_threshold(),
                      torch_threads=torch.get_num_threads())
        return _emit(result, args.out)
    if args.config is None:
        raise SystemExit(
            'benchmark.py: give a CONFIG (or --dynamic-threshold)')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope('mmseg')
    # init_weights reports every parameter at INFO level: keep stdout JSON
    MMLogger.get_instance('mmengine').setLevel(logging.WARNING)
    result = run_benchmark(
        cfg,
        device=args.device,
        batch_size=args.batch_size,
        crop_size=args.crop_size,
        steps=args.steps,
        warmup=args.warmup,
        infer_images=args.infer_images,
        paper_scales=args.paper_scales,
        attn_all_blocks=args.attn_all_blocks)
    result['config'] = args.config
    result['cfg_options'] = args.cfg_options or {}
    _emit(result, args.out)


def _emit(result: dict, out) -> None:
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if out:
        os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
        with open(out, 'w') as f:
            f.write(text + '\n')


if __name__ == '__main__':
    main()
