"""The documentation stays true (issue #28).

Every config a document or metafile names exists (and so builds:
``test_configs.test_config_builds`` builds every file under ``configs/``);
every ``tools/...`` script a document shows exists and lists each option shown
with it in its ``--help``; every relative link and picture resolves, anchors
included; the README's set-up commands are the ones ``.ci/run`` and the demo
run; every method folder has a README and a metafile that list all its
configs; no coco128 photo is committed; registered classes carry mmseg-style
docstrings. Each checker is also run on a small broken tree to show that it
fails when a link, a config or an option goes away.
"""
import glob
import hashlib
import inspect
import json
import os
import os.path as osp
import re
import shlex
import subprocess
import sys
from typing import Dict, List, Set, Tuple

import pytest
import yaml

from .conftest import REPO, SHARED

DOC_GLOBS = ('README.md', 'docs/**/*.md', 'configs/*/README.md')
METHOD_DIRS = sorted(
    d for d in os.listdir(osp.join(REPO, 'configs'))
    if d != '_base_' and osp.isdir(osp.join(REPO, 'configs', d)))
IMAGE_EXT = ('.png', '.jpg', '.jpeg', '.gif', '.webp', '.bmp')


def doc_files(root: str = REPO) -> List[str]:
    files = set()
    for pattern in DOC_GLOBS:
        files.update(glob.glob(osp.join(root, pattern), recursive=True))
    return sorted(files)


# ---------------------------------------------------------------- markdown
FENCE = re.compile(r'^```.*?^```', re.S | re.M)
# inline code may wrap lines, never paragraphs
INLINE = re.compile(r'`((?:[^`\n]|\n(?!\s*\n))+)`')
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)\)')


def code_lines(text: str) -> List[str]:
    """Commands shown in a document: each line of a fenced block (backslash
    continuations joined, comments dropped) and each inline code span."""
    out = []
    for block in FENCE.findall(text):
        body = '\n'.join(block.split('\n')[1:-1]).replace('\\\n', ' ')
        for line in body.split('\n'):
            out.append(re.split(r'\s#\s|^#', line)[0])
    prose = FENCE.sub('', text)
    out += [' '.join(span.split()) for span in INLINE.findall(prose)]
    return out


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    s = re.sub(r'[`*_]', '', heading.strip().lower())
    s = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', s)
    s = re.sub(r'[^\w\- ]', '', s)
    return s.replace(' ', '-')


def anchors(path: str) -> Set[str]:
    text = FENCE.sub('', open(path, encoding='utf-8').read())
    return {slug(m) for m in re.findall(r'^#+\s+(.*)$', text, re.M)}


def broken_links(files: List[str]) -> List[str]:
    """Relative links and pictures that name no file, or no heading of it."""
    bad = []
    for path in files:
        text = FENCE.sub('', open(path, encoding='utf-8').read())
        for target in LINK.findall(text):
            if re.match(r'[a-z]+:', target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition('#')
            dest = (osp.normpath(osp.join(osp.dirname(path), file_part))
                    if file_part else path)
            if not osp.exists(dest):
                bad.append(f'{osp.relpath(path, REPO)}: {target} (no file)')
            elif anchor and dest.endswith('.md') and \
                    anchor not in anchors(dest):
                bad.append(f'{osp.relpath(path, REPO)}: {target} '
                           '(no such heading)')
    return bad


# ---------------------------------------------------------------- configs
CONFIG_REF = re.compile(r'(?<![\w./:-])((?:configs/)?(?:%s)/[\w./{},-]+\.py)'
                        % '|'.join(map(re.escape, METHOD_DIRS)))


def expand_braces(s: str) -> List[str]:
    m = re.search(r'\{([^{}]*)\}', s)
    if not m:
        return [s]
    return [x for alt in m.group(1).split(',')
            for x in expand_braces(s[:m.start()] + alt + s[m.end():])]


def named_configs(files: List[str], root: str = REPO) -> Dict[str, str]:
    """Config path (relative to the repository) -> the first document naming
    it: ``configs/cosa/x.py``, ``cosa/x.py`` (relative to ``configs/``) and
    links from a config folder's README to ``x.py``."""
    found = {}
    for path in files:
        text = open(path, encoding='utf-8').read()
        for ref in CONFIG_REF.findall(text):
            for one in expand_braces(ref):
                rel = one if one.startswith('configs/') else 'configs/' + one
                found.setdefault(rel, osp.relpath(path, root))
        here = osp.relpath(osp.dirname(path), root)
        if here.startswith('configs' + os.sep):
            for target in LINK.findall(text):
                if target.endswith('.py') and '/' not in target:
                    found.setdefault(osp.join(here, target),
                                     osp.relpath(path, root))
    return found


def missing_configs(files: List[str], root: str = REPO) -> List[str]:
    return [f'{doc}: {cfg}' for cfg, doc in named_configs(files, root).items()
            if not osp.isfile(osp.join(root, cfg))]


# ---------------------------------------------------------------- tools
TOOL_REF = re.compile(
    r'(?:^|[\s(=])(?:\./)?(tools/)?([\w-]+\.(?:py|sh))\b')
OPTION = re.compile(r'(?<![\w-])(--[a-z][\w-]*)')


def tool_uses(files: List[str], root: str = REPO) -> Dict[str, Set[str]]:
    """tools/<name> -> the options the documents show with it (options in
    the same command line or inline code span, before any pipe)."""
    uses: Dict[str, Set[str]] = {}
    for path in files:
        for line in code_lines(open(path, encoding='utf-8').read()):
            line = line.split('|| ')[0].split(' | ')[0]
            m = TOOL_REF.search(line)
            if not m or 'torchrun' in line[:m.start()]:
                continue
            prefix, name = m.groups()
            if not prefix and not osp.isfile(osp.join(root, 'tools', name)):
                continue  # a config or module .py, not a tool
            opts = set(OPTION.findall(line[m.end():])) - {'--help'}
            uses.setdefault(name, set()).update(opts)
    return uses


HELP_RUNNER = r"""
import contextlib, io, json, runpy, sys, warnings
warnings.simplefilter('ignore')
out = {}
for path in sys.argv[1:]:
    buf = io.StringIO()
    sys.argv = [path, '--help']
    try:
        with contextlib.redirect_stdout(buf):
            runpy.run_path(path, run_name='__main__')
    except SystemExit:
        pass
    except Exception as e:  # the tool broke before printing its usage
        buf.write(f'error: {e!r}')
    out[path] = buf.getvalue()
print('\n@@HELP@@' + json.dumps(out))
"""


def tool_helps(paths: List[str]) -> Dict[str, str]:
    """Each tool's ``--help`` text: Python tools all in one process (each
    imports torch and mmseg: paying that once keeps the test short); for
    shell tools their source, where their options are spelt out."""
    helps = {p: open(p, encoding='utf-8').read()
             for p in paths if p.endswith('.sh')}
    py = [p for p in paths if p.endswith('.py')]
    if py:
        proc = subprocess.run([sys.executable, '-c', HELP_RUNNER] + py,
                              cwd=REPO, capture_output=True, text=True,
                              timeout=600)
        assert '@@HELP@@' in proc.stdout, proc.stderr[-3000:]
        helps.update(json.loads(proc.stdout.split('@@HELP@@')[-1]))
    return helps


def bad_tool_uses(files: List[str], root: str = REPO) -> List[str]:
    uses = tool_uses(files, root)
    helps = tool_helps([p for p in (osp.join(root, 'tools', n) for n in uses)
                        if osp.isfile(p)])
    bad = []
    for name, opts in sorted(uses.items()):
        path = osp.join(root, 'tools', name)
        if not osp.isfile(path):
            bad.append(f'tools/{name} (no such tool)')
            continue
        text = helps[path]
        if name.endswith('.py') and 'usage:' not in text:
            bad.append(f'tools/{name} --help printed no usage')
            continue
        for opt in sorted(opts):
            if not re.search(re.escape(opt) + r'(?![\w-])', text):
                bad.append(f'tools/{name} {opt} (not in its --help)')
    return bad


# ---------------------------------------------------------------- tests
def test_every_document_link_and_picture_resolves():
    files = doc_files()
    assert len(files) >= 25
    assert broken_links(files) == []


def test_every_config_named_in_a_document_exists():
    named = named_configs(doc_files())
    assert missing_configs(doc_files()) == []
    # and so it builds: test_configs builds every file under configs/; and
    # every one of those is documented somewhere
    from .test_configs import CONFIGS
    built = {osp.relpath(p, REPO) for p in CONFIGS}
    assert set(named) == built


def test_every_tool_and_option_a_document_shows_exists():
    uses = tool_uses(doc_files())
    for tool in ('train.py', 'test.py', 'gen_pseudo_labels.py', 'vis_cam.py',
                 'benchmark.py', 'check_dataset.py', 'wsss_config.py',
                 'probe_pseudo_labels.py', 'clip_text_embeddings.py',
                 'dist_train.sh', 'gpu_check.sh'):
        assert tool in uses, f'no document shows tools/{tool}'
    assert {'--source', '--crf', '--feat-refine', '--bg-thr', '--workers',
            '--scales'} <= uses['gen_pseudo_labels.py']
    assert bad_tool_uses(doc_files()) == []


DOCS_PATH = re.compile(r'(?<![\w/.-])docs/[\w./-]*\w')


def code_files(root: str = REPO) -> List[str]:
    files = []
    for sub in ('configs', 'tools', 'mmseg_wsss'):
        for ext in ('py', 'sh'):
            files += glob.glob(osp.join(root, sub, '**', f'*.{ext}'),
                               recursive=True)
    return sorted(f for f in files if osp.isfile(f))


def missing_docs_paths(files: List[str], root: str = REPO) -> List[str]:
    """``docs/...`` paths named in the files that do not exist."""
    return [f'{osp.relpath(path, root)}: {ref}' for path in files
            for ref in DOCS_PATH.findall(open(path, encoding='utf-8').read())
            if not osp.exists(osp.join(root, ref))]


def test_docs_and_configs_named_in_code_comments_exist():
    """Configs, tools and the package point users at docs pages and
    configs in their comments and messages: those exist too."""
    files = code_files()
    assert missing_docs_paths(files) == []
    assert missing_configs(files) == []
    assert any(DOCS_PATH.search(open(f).read()) for f in files)


def test_checkers_fail_when_a_link_config_or_option_is_removed(tmp_path):
    """The checks above on a tree where each named thing is gone."""
    (tmp_path / 'tools').mkdir()
    (tmp_path / 'configs' / 'cosa').mkdir(parents=True)
    (tmp_path / 'docs').mkdir()
    (tmp_path / 'configs' / 'cosa' / 'kept.py').write_text('')
    (tmp_path / 'docs' / 'other.md').write_text('# Title\n## A part\n')
    (tmp_path / 'tools' / 'tool.py').write_text(
        'import argparse\np = argparse.ArgumentParser()\n'
        "p.add_argument('--kept')\np.parse_args()\n")
    doc = tmp_path / 'README.md'
    doc.write_text(
        '[ok](docs/other.md#a-part) [gone](docs/missing.md) '
        '[bad anchor](docs/other.md#no-part) ![pic](docs/nope.png)\n'
        '`configs/cosa/kept.py` and `cosa/removed.py`\n'
        '```bash\npython tools/tool.py --kept 1 --removed 2\n'
        'python tools/gone.py\n```\n')
    files = [str(doc)]
    links = broken_links(files)
    assert len(links) == 3 and all('README.md' in b for b in links)
    assert not any('a-part' in b for b in links)
    assert missing_configs(files, str(tmp_path)) == \
        ['README.md: configs/cosa/removed.py']
    (tmp_path / 'configs' / 'cosa' / 'kept.py').write_text(
        '# see docs/other.md and docs/gone.md\n')
    assert missing_docs_paths([str(tmp_path / 'configs' / 'cosa' /
                                   'kept.py')], str(tmp_path)) == \
        ['configs/cosa/kept.py: docs/gone.md']
    bad = bad_tool_uses(files, str(tmp_path))
    assert 'tools/tool.py --removed (not in its --help)' in bad
    assert 'tools/gone.py (no such tool)' in bad
    assert not any('--kept' in b for b in bad)


def test_readme_setup_commands_are_what_ci_and_the_demo_run():
    text = open(osp.join(REPO, 'README.md'), encoding='utf-8').read()
    assert len(text.splitlines()) <= 150
    blocks = FENCE.findall(text)
    setup = [code_lines(b)[0].strip() for b in blocks[:1]][0]
    first = [ln.strip() for ln in code_lines(blocks[0]) if ln.strip()]
    assert setup == 'bash tools/demo.sh'
    assert first == ['bash tools/demo.sh', 'bash tools/run_tests.sh']
    ci = [ln for ln in open(osp.join(REPO, '.ci', 'run')).read().splitlines()
          if ln.strip() and not ln.startswith(('#', 'set ', 'cd '))]
    assert ci == ['bash tools/run_tests.sh']
    # the quick start's demo-data commands are the demo's own
    demo = open(osp.join(REPO, 'tools', 'demo.sh')).read()
    config = re.search(r'CONFIG="\$\{CONFIG:-([^}]+)\}"', demo).group(1)
    work_dir = re.search(r'WORK_DIR="\$\{WORK_DIR:-([^}]+)\}"', demo).group(1)
    from mmengine.config import Config
    iters = Config.fromfile(osp.join(REPO, config)).train_cfg.max_iters
    ckpt = f'{work_dir}/iter_{iters}.pth'
    quick = [ln.strip() for ln in code_lines(blocks[1]) if ln.strip()]
    assert quick[0] == f'python tools/train.py {config} --work-dir {work_dir}'
    assert re.search(r'tools/train\.py "\$CONFIG" --work-dir "\$WORK_DIR"',
                     demo)
    for tool in ('test.py', 'vis_cam.py'):
        line = next(q for q in quick if f'tools/{tool}' in q)
        assert shlex.split(line)[2:4] == [config, ckpt], line
        assert f'tools/{tool} "$CONFIG" "$CKPT"' in demo
    assert any(f'tools/gen_pseudo_labels.py {config} {ckpt}' in q
               for q in quick)


def test_every_method_folder_has_readme_and_metafile_listing_its_configs():
    index = yaml.safe_load(open(osp.join(REPO, 'model-index.yml')))
    imported = index['Import']
    assert all(re.fullmatch(r'configs/[\w-]+/metafile\.yaml', p)
               for p in imported), imported
    assert sorted(p.split('/')[1] for p in imported) == METHOD_DIRS
    names = set()
    for d in METHOD_DIRS:
        folder = osp.join(REPO, 'configs', d)
        configs = sorted(f for f in os.listdir(folder) if f.endswith('.py'))
        readme = open(osp.join(folder, 'README.md'), encoding='utf-8').read()
        for section in ('## Summary', '## Results', '## Configs',
                        '## Citation'):
            assert section in readme, (d, section)
        for f in configs:
            assert f'({f})' in readme, f'{d}/README.md does not list {f}'
        meta = yaml.safe_load(open(osp.join(folder, 'metafile.yaml')))
        collections = {c['Name'] for c in meta['Collections']}
        for c in meta['Collections']:
            assert c['README'] == f'configs/{d}/README.md'
            assert {'Name', 'Metadata', 'README'} <= set(c)
        listed = []
        for m in meta['Models']:
            assert m['In Collection'] in collections
            assert osp.isfile(osp.join(REPO, m['Config'])), m['Config']
            assert m['Name'] not in names
            names.add(m['Name'])
            assert {'Training Data', 'Architecture'} <= set(m['Metadata'])
            for r in m['Results']:
                assert {'Task', 'Dataset', 'Metrics'} <= set(r), m['Name']
            listed.append(osp.basename(m['Config']))
        assert sorted(listed) == configs, d


def test_metafiles_resolve_configs_like_openmmlab_packages():
    """mmengine's `package::name` look-up reads model-index.yml and the
    metafiles from the installed package's .mim folder."""
    from mmengine.config.utils import _get_cfg_metainfo
    from mmengine.hub import get_config
    from mmengine.utils import get_installed_path
    pkg = get_installed_path('mmseg_wsss')
    meta = _get_cfg_metainfo(pkg, 'cosa/cosa_tiny_toy.py')
    assert meta['Config'] == 'configs/cosa/cosa_tiny_toy.py'
    cfg = get_config('mmseg_wsss::cosa/cosa_tiny_toy.py')
    assert cfg.model.type == 'CoSA'


def committed_files() -> List[str]:
    try:
        out = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'],
                             cwd=REPO, capture_output=True, text=True,
                             check=True).stdout
        return [f for f in out.splitlines() if osp.isfile(osp.join(REPO, f))]
    except (OSError, subprocess.CalledProcessError):
        pytest.fail('tests/test_docs.py needs the git checkout to list files')


def sha256(path: str) -> str:
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def test_no_coco128_picture_is_committed():
    pictures = [f for f in committed_files() if f.lower().endswith(IMAGE_EXT)]
    assert pictures, 'the docs pictures should be found'
    assert not [f for f in pictures if 'coco128' in f.lower()]
    # every committed picture is one a document shows (none left behind)
    shown = set()
    for path in doc_files():
        for target in LINK.findall(open(path, encoding='utf-8').read()):
            if target.lower().endswith(IMAGE_EXT):
                shown.add(osp.relpath(osp.normpath(
                    osp.join(osp.dirname(path), target)), REPO))
    assert set(pictures) <= shown | {
        f for f in pictures if f.startswith('tests/')}
    coco128 = osp.join(SHARED, 'data', 'coco128_voc')
    if not osp.isdir(coco128):
        if os.environ.get('WSSS_ALLOW_MISSING_SHARED') == '1':
            pytest.skip(f'{coco128} not present: byte comparison not made')
        pytest.fail(f'{coco128} missing (set WSSS_ALLOW_MISSING_SHARED=1)')
    photos = {sha256(p) for p in glob.glob(osp.join(coco128, '**', '*'),
                                           recursive=True)
              if p.lower().endswith(IMAGE_EXT)}
    assert len(photos) >= 128
    assert not [f for f in pictures if sha256(osp.join(REPO, f)) in photos]


# ---------------------------------------------------------------- docstrings
def registered_classes() -> List[Tuple[str, type]]:
    import mmseg_wsss  # noqa: F401
    from mmseg.registry import (DATASETS, HOOKS, LOOPS, METRICS, MODELS,
                                OPTIM_WRAPPER_CONSTRUCTORS, TRANSFORMS)
    out = []
    for reg in (MODELS, DATASETS, TRANSFORMS, HOOKS, METRICS, LOOPS,
                OPTIM_WRAPPER_CONSTRUCTORS):
        for name, cls in reg.module_dict.items():
            if getattr(cls, '__module__', '').startswith('mmseg_wsss.'):
                out.append((name, cls))
    return out


def docstring_problems(cls: type) -> List[str]:
    """mmseg style: what it does, ``Args:`` for the constructor it defines,
    and a config example."""
    doc = inspect.getdoc(cls) or ''
    problems = []
    if len(doc.split()) < 8:
        problems.append('no description')
    if '__init__' in cls.__dict__:
        params = [p for p in inspect.signature(cls.__init__).parameters
                  .values() if p.name != 'self' and p.kind not in (
                      p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        if params and 'Args:' not in doc:
            problems.append('no Args:')
    if not re.search(r'^Examples?:', doc, re.M) or 'type=' not in doc:
        problems.append('no config example (Example: ... type=...)')
    return problems


def test_registered_classes_have_mmseg_style_docstrings():
    classes = registered_classes()
    assert len(classes) >= 45
    bad = {name: p for name, cls in classes
           if (p := docstring_problems(cls))}
    assert bad == {}


def test_docstring_check_fails_on_a_bare_class():
    class Bare:
        def __init__(self, x):
            pass

    class Good:
        """Does one thing to the maps it is given, then returns them.

        Args:
            x (int): The thing.

        Example:
            >>> cfg = dict(type='Good', x=1)
        """

        def __init__(self, x):
            pass

    assert len(docstring_problems(Bare)) == 3
    assert docstring_problems(Good) == []
