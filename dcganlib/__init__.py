"""dcganlib — DCGANs for medical image slices on TensorFlow/Keras 3.

Modules, in the order a run uses them (ARCHITECTURE.md has the map and the data flow):

* :mod:`dcganlib.config`    — the frozen :class:`~dcganlib.config.Config`, its presets, the notebook setup
* :mod:`dcganlib.data`      — readers, discovery, decoded cache, subject splits, ``tf.data``, the demo set
* :mod:`dcganlib.models`    — DCGAN generators and discriminator
* :mod:`dcganlib.losses`    — generator/discriminator loss pairs
* :mod:`dcganlib.augment`   — DiffAugment for the discriminator's inputs
* :mod:`dcganlib.gan`       — the GAN ``keras.Model`` with its train step, optimizers, checkpoint
* :mod:`dcganlib.hardware`  — precision, distribution strategy and XLA for the machine
* :mod:`dcganlib.cluster`   — several machines: this process's role from ``TF_CONFIG``
* :mod:`dcganlib.callbacks` — what happens after each step and epoch: guards, recorder, SSIM tracker
* :mod:`dcganlib.training`  — :func:`~dcganlib.training.train`
* :mod:`dcganlib.runs`      — the run folder: names, history, rules, lock
* :mod:`dcganlib.sampling`  — fixed noise, sampling, ``generator.keras``, ``generate``
* :mod:`dcganlib.metrics`   — SSIM family, two-sample test, feature distances, memorisation
* :mod:`dcganlib.evaluate`  — evaluate a run into ``metrics.json`` and figures
* :mod:`dcganlib.images`    — grids and GIFs;  :mod:`dcganlib.plots` — matplotlib figures
* :mod:`dcganlib.bench`     — speed benchmark;  :mod:`dcganlib.cli` — ``python -m dcganlib``
* shared facts: :mod:`dcganlib.pixels` (uint8 ↔ [-1, 1]), :mod:`dcganlib.seeds` (random streams),
  :mod:`dcganlib.files` (atomic writes), :mod:`dcganlib.errors` (user-facing errors)
* the user's terminal: :mod:`dcganlib.terminal` (TensorFlow's log lines), :mod:`dcganlib.progress`

Importing the package does not import TensorFlow; the modules that need it do. It does prepare the
TensorFlow import so that its C++ log lines stay off the terminal (:mod:`dcganlib.terminal`;
``DCGANLIB_VERBOSE=1`` or ``--verbose`` shows them).
"""

from . import terminal as _terminal

_terminal.quiet_tensorflow()

from .config import Config, default_config, smoke_config  # noqa: E402
from .errors import (ConfigError, DataError, DcganlibError, DivergenceError, RunFolderError,  # noqa: E402
                     WorkerLostError)

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
    "WorkerLostError",
    "__version__",
]
