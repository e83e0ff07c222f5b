"""Write the synthetic WSSS dataset (VOC layout) used by the demo and tests.

    python tools/make_toy_voc.py data/toy_voc [--train 500] [--val 100]

Deterministic for a given seed; a complete set with the same parameters is
left untouched. See :mod:`mmseg_wsss.datasets.toy` for what it contains.
"""
import argparse
import time

from mmseg_wsss.datasets.toy import TOY_CLASSES, make_toy_voc


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', nargs='?', default='data/toy_voc')
    parser.add_argument('--train', type=int, default=500)
    parser.add_argument('--val', type=int, default=100)
    parser.add_argument('--min-size', type=int, default=112)
    parser.add_argument('--max-size', type=int, default=160)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    t0 = time.time()
    counts = make_toy_voc(args.out_dir, args.train, args.val,
                          (args.min_size, args.max_size), args.seed)
    print(f'toy VOC set in {args.out_dir}: {counts["train"]} train, '
          f'{counts["val"]} val images, classes {TOY_CLASSES[1:]} '
          f'({time.time() - t0:.1f} s)')


if __name__ == '__main__':
    main()
