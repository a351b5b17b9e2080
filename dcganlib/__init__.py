"""dcganlib — DCGANs for medical image slices on TensorFlow/Keras 3.

Modules, in the order a run uses them:

* :mod:`dcganlib.config`   — the frozen :class:`~dcganlib.config.Config` and its presets
* :mod:`dcganlib.data`     — readers (PNG/JPEG/TIFF, .npy, NIfTI), splits, the ``tf.data`` pipeline
* :mod:`dcganlib.demo`     — the embedded MNI152 brain-MRI demo dataset
* :mod:`dcganlib.models`   — DCGAN generators and discriminator
* :mod:`dcganlib.losses`   — generator/discriminator loss pairs
* :mod:`dcganlib.training` — the GAN ``keras.Model``, callbacks, checkpoints, :func:`train`
* :mod:`dcganlib.metrics`  — SSIM family, diversity, two-sample test, FID/KID, memorisation
* :mod:`dcganlib.evaluate` — evaluate a run folder into ``metrics.json`` and figures
* :mod:`dcganlib.plots`    — grids, GIFs, report figures
* :mod:`dcganlib.bench`    — speed benchmark
* :mod:`dcganlib.cli`      — ``python -m dcganlib``

Importing the package does not import TensorFlow; the modules that need it do.
"""

import os as _os

# TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) drowns the CLI's own lines; users can
# still raise the level by setting the variable themselves.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .config import Config, default_config, smoke_config  # noqa: E402
from .errors import ConfigError, DataError, DcganlibError, DivergenceError, RunFolderError  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Config",
    "default_config",
    "smoke_config",
    "DcganlibError",
    "ConfigError",
    "DataError",
    "RunFolderError",
    "DivergenceError",
    "__version__",
]
