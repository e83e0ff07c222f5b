"""mmseg-wsss: weakly supervised semantic segmentation for MMSegmentation 1.x."""
import os.path as osp

from setuptools import find_packages, setup


def get_version():
    ns = {}
    with open(osp.join(osp.dirname(__file__), 'mmseg_wsss', 'version.py')) as f:
        exec(f.read(), ns)
    return ns['__version__']


def readme():
    with open(osp.join(osp.dirname(__file__), 'README.md'), encoding='utf-8') as f:
        return f.read()


# Ranges, not pins: a user's own (CUDA) torch and mmcv must never be replaced.
# `tools/setup_env.sh` installs the exact, measured versions in requirements/.
install_requires = [
    'torch>=2.0',
    'mmcv>=2.0.0rc4,<2.2.0',
    'mmengine>=0.10.0,<1.0.0',
    'mmsegmentation>=1.0.0,<2.0.0',
    'numpy',
    'opencv-python-headless',
    'matplotlib',
    # mmseg imports these (its tokenizer) without declaring them.
    'ftfy',
    'regex',
]

setup(
    name='mmseg_wsss',
    version=get_version(),
    description='Weakly supervised semantic segmentation (CoSA, APC, ACR) for MMSegmentation 1.x',
    long_description=readme(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    # configs, tools and the model index travel inside the package (as in
    # every OpenMMLab package), so `_base_ = ['mmseg_wsss::cosa/...py']`
    # resolves for a regular (non-editable) install too; mmseg_wsss/.mim/*
    # are links to the repository's folders, copied into wheels
    include_package_data=False,
    package_data={
        'mmseg_wsss': [
            '.mim/model-index.yml', '.mim/configs/*.py',
            '.mim/configs/*/*.py', '.mim/configs/*/*/*.py',
            '.mim/configs/*/*.md', '.mim/configs/*/*.yaml', '.mim/tools/*.py',
            '.mim/tools/*.sh'
        ]
    },
    python_requires='>=3.8',
    install_requires=install_requires,
    extras_require={
        'crf': ['pydensecrf2'],
        # mmpretrain / timm backbones (both need torchvision beside torch)
        'mmpretrain': ['mmpretrain>=1.0.0', 'timm'],
        'tests': ['pytest'],
        # CLIP text tower + tokenizer (class text embeddings), CLIPViT tests
        'clip': ['open-clip-torch'],
        'tensorboard': ['tensorboard'],
    },
    license='Apache License 2.0',
    zip_safe=False,
)
