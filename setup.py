"""avloc-jax: cross-attentional audio-visual fusion for weakly-supervised action localization."""

from setuptools import find_packages, setup

setup(
    name="avloc-jax",
    version="0.1.0",
    description=(
        "JAX/Flax reference implementation of cross-attentional audio-visual fusion "
        "for weakly-supervised temporal action localization (Lee et al., ICLR 2021)."
    ),
    python_requires=">=3.10",
    packages=find_packages(
        include=["avloc_jax", "avloc_jax.*", "tfds_builders", "tfds_builders.*", "configs"]
    ),
    package_data={"tfds_builders": ["*/*.txt", "*/*.md"]},
    install_requires=[
        "jax>=0.4.35",
        "flax>=0.10.0",
        "optax>=0.2.4",
        "orbax-checkpoint>=0.11.0",
        "tensorflow-datasets>=4.9.7",
        "array_record>=0.5.1",
        "grain>=0.2.6",
        "numpy>=2.0",  # sampling: argsort(stable=True), the array-API spelling
        "scipy>=1.11",  # resample_poly for audio not at 16 kHz (VGGish); jax needs it anyway
        "ml-collections>=0.1.1",
        "absl-py>=2.1.0",
        "h5py>=3.10",
        "tqdm>=4.66",
        "tensorboardX>=2.6.2",
        "clu>=0.0.12",  # metric writers, periodic actions (used without TensorFlow)
        "matplotlib>=3.8",
        "av>=14.0",  # PyAV: decoding video files for feature extraction
    ],
    extras_require={
        # The test extra also carries the checks that CI runs before the tests.
        "test": [
            "pytest>=8.0",
            "pytest-xdist>=3.5",
            "hypothesis>=6.100",  # property tests (samplers, metrics, parsers)
            "markdown-it-py>=3.0",  # tests/test_readme.py reads the README's code blocks
            # The TV-L1 flow test runs in CI: OpenCV with the contrib modules (cv2.optflow).
            "opencv-contrib-python-headless>=4.8",
            "portpicker>=1.6",
            "ruff>=0.8",
            "mypy>=1.13",
            "import-linter>=2.1",
        ],
        "dev": ["pre-commit>=3.5"],
        # Only for `avloc convert-weights` (reads the public PyTorch checkpoints).
        "convert": ["torch>=2.1"],
        # Only for `bench/extract_speed.py --peer torch` (the PyTorch peers, bench/torch_peer.py).
        "bench": ["torch>=2.1"],
        # Only for optical flow (TV-L1, as the reference I3D flow features were made).
        "flow": ["opencv-contrib-python-headless>=4.8"],
    },
    entry_points={"console_scripts": ["avloc=avloc_jax.cli.main:main"]},
)
