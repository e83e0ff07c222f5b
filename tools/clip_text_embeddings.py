"""Write the class text embeddings a CLIP WSSS method reads, from a CLIP
checkpoint on your disk.

    python tools/clip_text_embeddings.py --checkpoint ViT-B-16.pt \\
        [--model ViT-B-16] [--classes voc|coco|FILE] [--bg voc|coco|none|FILE]
        [--template 'a clean origami {}.' ...] --out clip_vitb16_text_voc.pth

Needs ``open_clip`` (``pip install -e .[clip]``): its text tower and its
bundled tokenizer vocabulary; nothing is downloaded. ``--checkpoint``: an
OpenAI / open_clip state dict (``.pt`` / ``.pth`` / ``.bin`` /
``.safetensors``; OpenAI's TorchScript ``ViT-B-16.pt`` only with
``--trust-checkpoint``), read with the project's safe loader.
``--random-init SEED`` uses an untrained tower instead (tests, dry runs).

Defaults are the references': the single template ``'a clean origami
{}.'``, CLIP-ES's VOC words (``bird avian``, ``person with
clothes,people,human``, ...) and its 25 VOC / 23 COCO background words. The
file holds ``fg`` (K, D) and ``bg`` (M, D) unit rows with their words,
templates and provenance (architecture, checkpoint path and SHA-256,
``logit_scale``); see :mod:`mmseg_wsss.models.utils.clip_text`.
"""
import argparse
import os.path as osp
import sys

import torch

import mmseg_wsss  # noqa: F401  (safe checkpoint loading)
from mmseg_wsss.models.utils.clip_text import (DEFAULT_TEMPLATES,
                                               background_words,
                                               class_words, zeroshot_rows)
from mmseg_wsss.models.backbones.clip_vit import read_clip_checkpoint
from mmseg_wsss.utils import add_trust_argument, apply_trust_arguments
from mmseg_wsss.utils.checkpoint import sha256_file
from mmseg_wsss.utils.run_guard import write_atomic


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument('--checkpoint', help='CLIP weights (state dict)')
    src.add_argument('--random-init', type=int, metavar='SEED',
                     help='an untrained tower (tests, dry runs)')
    parser.add_argument('--model', default='ViT-B-16',
                        help='open_clip architecture (ViT-B-16, ViT-L-14)')
    parser.add_argument('--classes', default='voc',
                        help='voc, coco or a file of class words')
    parser.add_argument('--bg', default=None,
                        help='background words: voc, coco, none or a file '
                        '(default: voc for --classes voc, coco for coco, '
                        'none otherwise)')
    parser.add_argument('--template', action='append',
                        help='prompt template with {} (repeatable; default '
                        f'{DEFAULT_TEMPLATES[0]!r})')
    parser.add_argument('--out', required=True)
    parser.add_argument('--attributes', metavar='JSON',
                        help="ExCEL's attribute bank from class "
                        'descriptions: a JSON object class -> list of '
                        'sentences (or a list of lists in class order), '
                        'clustered into --clusters centres, written to '
                        '--bank-out')
    parser.add_argument('--clusters', type=int, default=112,
                        help='attribute clusters (ExCEL: 112 VOC, 224 COCO)')
    parser.add_argument('--bank-out', help='where the attribute bank goes')
    add_trust_argument(parser)
    return parser.parse_args(argv)


def build_clip(model_name: str, checkpoint=None, seed=None):
    """(open_clip model, tokenizer) with the checkpoint's weights (text
    tower and logit scale strictly; the image tower when present)."""
    try:
        import open_clip
    except ImportError:
        sys.exit('open_clip is needed for the text tower and tokenizer: '
                 "pip install -e '.[clip]' (or pip install open-clip-torch)")
    if seed is not None:
        torch.manual_seed(seed)
    model = open_clip.create_model(model_name, pretrained=None)
    tokenizer = open_clip.get_tokenizer(model_name)
    if checkpoint is not None:
        try:
            state = read_clip_checkpoint(checkpoint)
        except ValueError as e:  # an untrusted TorchScript archive
            sys.exit(str(e))
        text = {k: v for k, v in state.items()
                if not k.startswith('visual.')}
        missing, unexpected = model.load_state_dict(text, strict=False)
        missing = [k for k in missing if not k.startswith('visual.')]
        if missing:
            sys.exit(f'{checkpoint} does not fit open_clip {model_name}: '
                     f'missing text keys {missing[:5]}... (another '
                     'architecture? --model)')
    return model.eval(), tokenizer


def kmeans(x: torch.Tensor, k: int, iters: int = 100, seed: int = 0):
    """(centres (k, D), assignment (N, )) of Lloyd's k-means with
    k-means++ seeding (deterministic for a seed). The reference uses
    sklearn's ``KMeans(random_state=0)``; this gives the same kind of bank,
    not the same bits -- the authors' published bank loads as it is."""
    g = torch.Generator().manual_seed(seed)
    n = len(x)
    if k > n:
        sys.exit(f'--clusters {k} is more than the {n} sentences')
    centres = [x[torch.randint(n, (1, ), generator=g)].squeeze(0)]
    for _ in range(1, k):
        d = torch.cdist(x, torch.stack(centres)).min(1)[0]**2
        idx = torch.multinomial(d / d.sum(), 1, generator=g)
        centres.append(x[idx].squeeze(0))
    c = torch.stack(centres)
    for _ in range(iters):
        assign = torch.cdist(x, c).argmin(1)
        new = torch.stack([x[assign == j].mean(0) if (assign == j).any()
                           else c[j] for j in range(k)])
        if torch.allclose(new, c):
            break
        c = new
    return c, torch.cdist(x, c).argmin(1)


def attribute_bank(model, tokenizer, path: str, words, clusters: int):
    """ExCEL's bank: every description encoded and L2-normalised,
    clustered; centres (D, M) as means of unit vectors (not renormalised)
    and the class-cluster incidence (K, M)."""
    import json
    with open(path, encoding='utf-8') as f:
        desc = json.load(f)
    lists = list(desc.values()) if isinstance(desc, dict) else list(desc)
    if len(lists) != len(words):
        sys.exit(f'{path} describes {len(lists)} classes, --classes has '
                 f'{len(words)}')
    embs, owner = [], []
    with torch.no_grad():
        for k, sentences in enumerate(lists):
            e = model.encode_text(tokenizer(list(sentences))).float()
            embs.append(e / e.norm(dim=-1, keepdim=True))
            owner += [k] * len(sentences)
    x = torch.cat(embs)
    centres, assign = kmeans(x, clusters)
    incidence = torch.zeros(len(lists), clusters)
    incidence[torch.tensor(owner), assign] = 1
    return dict(centres=centres.t().contiguous(), incidence=incidence,
                num_sentences=len(x), clusters=clusters,
                descriptions=osp.abspath(path))


def main(argv=None):
    args = parse_args(argv)
    apply_trust_arguments(args.trust_checkpoint)
    words = class_words(args.classes)
    bg_spec = args.bg or (args.classes if args.classes in ('voc', 'coco')
                          else 'none')
    bg_words = background_words(bg_spec)
    templates = args.template or list(DEFAULT_TEMPLATES)
    for t in templates:
        if '{}' not in t:
            sys.exit(f'--template {t!r} has no {{}} for the class word')
    model, tokenizer = build_clip(args.model, args.checkpoint,
                                  args.random_init)
    fg = zeroshot_rows(model.encode_text, tokenizer, words, templates)
    bg = zeroshot_rows(model.encode_text, tokenizer, bg_words, templates) \
        if bg_words else fg.new_zeros(0, fg.shape[1])
    bank = dict(
        fg=fg, bg=bg, fg_names=list(words), bg_names=list(bg_words),
        templates=list(templates), model=args.model,
        checkpoint=(osp.abspath(args.checkpoint) if args.checkpoint
                    else f'random (seed {args.random_init})'),
        checkpoint_sha256=(sha256_file(args.checkpoint) if args.checkpoint
                           else 'random'),
        logit_scale=float(model.logit_scale.exp()))
    import io
    buf = io.BytesIO()
    torch.save(bank, buf)
    write_atomic(args.out, buf.getvalue())
    if args.attributes:
        if not args.bank_out:
            sys.exit('--attributes needs --bank-out')
        attrs = attribute_bank(model, tokenizer, args.attributes, words,
                               args.clusters)
        attrs.update(model=args.model, checkpoint=bank['checkpoint'],
                     checkpoint_sha256=bank['checkpoint_sha256'])
        buf = io.BytesIO()
        torch.save(attrs, buf)
        write_atomic(args.bank_out, buf.getvalue())
        print(f'wrote {args.bank_out}: {attrs["num_sentences"]} descriptions'
              f' in {args.clusters} clusters')
    print(f'wrote {args.out}: {len(words)} class rows, {len(bg_words)} '
          f'background rows, {fg.shape[1]}-d, templates {templates}')


if __name__ == '__main__':
    main()
