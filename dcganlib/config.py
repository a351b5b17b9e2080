"""One frozen dataclass holds every setting of a run; it is saved as ``config.json`` in the run folder.

Presets:

* :func:`default_config` — the README main job: the embedded MNI152 demo data at 64×64; a
  resize-convolution generator at width 32, a discriminator at width 16, batch 32, lazy R1, an EMA of G's
  weights (decay 0.998 with a warm-up) for sampling, 39 epochs — the networks chosen by an ablation at a
  fixed CPU budget, the regularisation by curves of quality against compute (docs/recipes.md).
* :func:`long_config` — for more compute: the default recipe trained 4× as long.
* :func:`radford_config` — the paper's networks (transposed-convolution generator, widths 64, batch 64, no
  EMA, no R1), 20 epochs; about 3.6× the compute per epoch of the default.
* :func:`smoke_config` — tiny images and a couple of steps, for tests and CI (seconds on a CPU).

Configs are loaded only from JSON and validated field by field (:meth:`Config.from_dict`); an unknown
key or a bad value raises :class:`~dcganlib.errors.ConfigError` naming the key, before any training.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Optional

from .errors import ConfigError
from .files import write_json
from .seeds import MAX_SEED

GENERATORS = ("radford", "resize", "residual")
DISCRIMINATORS = ("dcgan", "residual")
GENERATOR_STARTS = ("dense", "conv_transpose")
UPSAMPLINGS = ("nearest", "bilinear", "subpixel")  # resize generator only
ACTIVATIONS = ("relu", "leaky_relu", "elu")
LOSSES = ("bce", "lsgan", "hinge", "rpgan")
D_NORMS = ("batch", "spectral", "spectral_batch", "none")  # normalisation of D's hidden blocks
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker")
#: Allowed milliseconds per GIF frame (config key gif_frame_ms, `gif --frame-ms`), inclusive.
GIF_FRAME_MS_RANGE = (10, 60_000)
#: Allowed slices of the embedded demo dataset (config key demo_count), inclusive.
DEMO_COUNT_RANGE = (1, 200_000)
AUGMENTATIONS = ("color", "translation", "cutout")  # DiffAugment policies, see dcganlib/augment.py
#: Keys that decide the networks: their layers, their weights' shapes and so the checkpoint's variables.
#: A resume cannot change them, not even with --force (the checkpoints would not fit the new networks).
ARCHITECTURE_KEYS = ("image_size", "channels", "latent_dim", "generator", "generator_start", "generator_upsample",
                     "generator_activation", "g_filters", "g_widths", "g_head_filters", "g_excitation",
                     "g_bfloat16_rounding", "discriminator", "d_filters", "d_stem_filters", "d_norm")
#: Keys whose value only matters for the architecture when it turns the feature on or off: d_dropout > 0
#: adds Dropout layers to D, ema > 0 adds the moving averages to G's optimizer (and its checkpoint),
#: ada_target > 0 adds the augmentation probability to the checkpoint, d_reconstruct > 0 adds D's decoder,
#: d_minibatch_std > 0 adds a feature map to D's last block (and weights to its logit layer).
#: Changing the rate or the decay of a feature that stays on is a training setting (--force).
SWITCH_KEYS = ("d_dropout", "ema", "ada_target", "d_reconstruct", "d_minibatch_std")
#: Feature switches added after runs had been saved, each with its "off" value: a run saved before one existed
#: trained without it, so a saved config.json lacking one of them reads as off — whatever today's default is —
#: and does not count as missing (such a run resumes after an upgrade). Every other key a saved file lacks is
#: unknown.
ADDED_SWITCHES = {"g_head_filters": 0, "g_widths": "", "g_excitation": False, "d_reconstruct": 0.0,
                  "d_minibatch_std": 0, "ada_target": 0.0, "penalty_rampup": 0, "d_stem_filters": 0,
                  "discriminator": "dcgan", "mirror": False, "g_bfloat16_rounding": False, "g_feature_matching": 0.0}
#: How :meth:`Config.diff` shows a key that a saved config.json lacks.
MISSING = "(missing)"


#: Keys a resume may change without --force: the run's length and what is shown or logged, not how it trains.
OUTPUT_ONLY_KEYS = ("epochs", "verbose", "tensorboard", "tensorboard_every_steps", "eval_every")


@dataclass(frozen=True)
class Config:
    """Every knob of a dcganlib run. Images inside the library are float32 in ``[-1, 1]``, NHWC."""

    # --- data -------------------------------------------------------------------------------
    data: Optional[str] = None  # folder/file of slices or NIfTI volumes; None = embedded MNI152 demo
    image_size: int = 64  # square side in pixels after resize-with-padding (see models.SUPPORTED_SIZES)
    channels: int = 1  # 1 (grayscale, the medical default) or 3
    max_images: Optional[int] = None  # cap on training images (after the split); None = all
    subject_regex: Optional[str] = None  # regex whose group 1 is the subject id; None = auto-detect
    val_fraction: float = 0.1  # fraction of subjects held out for validation (ignored for OASIS splits)
    test_fraction: float = 0.1  # fraction of subjects held out for testing (ignored for OASIS splits)
    nifti_axis: int = 2  # slicing axis for NIfTI volumes; 2 = axial in RAS orientation
    demo_count: int = 2000  # number of synthetic-subject slices in the embedded demo dataset
    cache_dir: Optional[str] = None  # where the demo dataset is built; None = $DCGANLIB_CACHE or ~/.cache
    # --- models -----------------------------------------------------------------------------
    # resize: measured to learn shapes within a few epochs where radford at width 32 stayed noise (README)
    # "resize" (upsample + conv, no checkerboard), "radford" (transposed convs) or "residual" (blocks of two 3x3
    # convs with a skip, no normalisation: R3GAN's idea, Huang et al. 2024; models.build_generator)
    generator: str = "resize"
    # resize generator's upsampling: nearest (Odena et al.) | bilinear, each then a 3x3 conv | subpixel (a 3x3 conv
    # at the low resolution to 4x the channels, rearranged into 2x2 pixels; Shi et al. 2016)
    generator_upsample: str = "nearest"
    generator_start: str = "dense"  # "dense" projection of z, or "conv_transpose" (z as 1x1 map)
    generator_activation: str = "relu"  # hidden activation of G: relu | leaky_relu | elu
    latent_dim: int = 100  # size of z ~ N(0, I)
    g_filters: int = 32  # width of G's last hidden block; doubles towards the input (paper: 64)
    # G's hidden widths from the base×base start to the last block, e.g. "512,128,48,16" at 64 px (wide at low
    # resolution, narrow at high); "" = doubling towards the input from g_filters
    g_widths: str = ""
    g_head_filters: int = 0  # width of a hidden G block at full resolution before the output conv; 0 = none
    # FastGAN's skip-layer excitation (Liu et al. 2021): each G block from 16 px on is gated channel-wise by
    # the block of a quarter of its side
    g_excitation: bool = False
    # round G's hidden convolutions and activations to bfloat16's 8 significant bits on the forward pass (the
    # gradient passes unrounded): in float32 it gave the tracked 1x score of mixed_bfloat16 (docs/recipes.md)
    g_bfloat16_rounding: bool = False
    discriminator: str = "dcgan"  # "dcgan" (strided convs, Radford et al.) or "residual" (needs d_norm "none")
    # a D narrower than G: measured better precision and spectrum for less compute (README, "Ablation")
    d_filters: int = 16  # width of D's first block; doubles with depth (paper: 64)
    # width of a stride-1 3x3 conv at full resolution before D's first strided block, so that D sees pixel-level
    # texture unaliased; 0 = none. Measured: a faster start that stops improving after 1x (docs/recipes.md)
    d_stem_filters: int = 0
    d_dropout: float = 0.0  # dropout after each D block (0 = Radford et al.)
    # FastGAN's self-supervised D (Liu et al. 2021): a decoder redraws each real image at half resolution from
    # D's second-deepest features; this weight times the L1 error joins D's loss; 0 = off
    d_reconstruct: float = 0.0
    # minibatch standard deviation (Karras et al. 2018): D sees how much groups of this many images differ; 0 = off
    d_minibatch_std: int = 0
    d_norm: str = "batch"  # D's blocks: batch norm (Radford) | spectral (Miyato et al. 2018) | spectral_batch | none
    # --- loss and optimisation ----------------------------------------------------------------
    loss: str = "bce"  # bce (non-saturating) | lsgan | hinge
    label_smoothing: float = 0.0  # one-sided: real targets become 1 - label_smoothing (bce only)
    g_learning_rate: float = 2e-4  # Adam, Radford et al.
    d_learning_rate: float = 2e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    # feature matching (Salimans et al. 2016): G's loss gains this weight x the squared distance between the
    # batch means of D's deepest features on real and generated images (losses.feature_matching_loss); 0 = off
    g_feature_matching: float = 0.0
    ema: float = 0.998  # decay of an exponential moving average of G's weights used for sampling; 0 = off
    ema_rampup: float = 0.05  # EMA half-life = min(half-life of ema, ema_rampup × G steps so far); 0 = no ramp
    # lazy R1 at γ 0.025 (0.0002·res²/batch at 64 px, batch 32): measured to keep every tracked figure
    # improving out to 4× the default budget, where the default without it stopped after 1× (docs/recipes.md)
    r1_gamma: float = 0.025  # R1 penalty γ/2·E‖∇D(x_real)‖² (Mescheder et al. 2018); 0 = off
    r2_gamma: float = 0.0  # R2 penalty γ/2·E‖∇D(G(z))‖²; 0 = off
    penalty_every: int = 4  # lazy regularisation: R1/R2 every k-th step, scaled by k (Karras et al. 2020)
    # warm-up of the penalties: R1's and R2's gamma grow linearly from 0 to their value over D's first N steps
    # (0 = off). 3,900 steps (twice the default run's): measured better at every budget from 1x to 4x than the
    # full gamma from the first step, which slows early training (docs/recipes.md, "A warm-up of R1")
    penalty_rampup: int = 3900
    # left-right flips of the training images, each with probability 1/2 per epoch (StyleGAN's --mirror): for data
    # whose mirror images are as plausible as the images themselves (axial slices, left and right knees)
    mirror: bool = False
    augment: str = ""  # DiffAugment of every image D sees, e.g. "translation,cutout"; "" = off
    # adaptive augmentation (Karras et al. 2020): each policy of `augment` hits an image with probability p,
    # p following sign(D(real)) towards this target; 0 = off (every image augmented, DiffAugment)
    ada_target: float = 0.0
    lr_decay: float = 0.0  # both learning rates fall linearly over the run's epochs to (1 - lr_decay) x rate
    batch_size: int = 32  # global batch (split across replicas); 32 measured better than 64 per CPU-second
    # 39 epochs = 1,950 steps: the README main job within 15 minutes in float32 on a 2-core AVX2 CPU
    epochs: int = 39  # total epochs of the run (a resumed run trains up to this number)
    seed: int = 42  # drives the split, shuffling, noise, augmentation and initialisation
    # --- hardware ---------------------------------------------------------------------------
    precision: str = "auto"  # auto: mixed_float16 on GPU, mixed_bfloat16 on bf16 CPUs, else float32
    jit_compile: Optional[bool] = None  # XLA; None = let the library choose what measured faster
    strategy: str = "auto"  # auto: Mirrored over >1 GPU, else the default one-device strategy
    # --- outputs ----------------------------------------------------------------------------
    grid_size: int = 36  # images in the per-epoch fixed-noise grid (a square number)
    checkpoint_every: int = 1  # epochs between checkpoints
    keep_checkpoints: int = 3  # checkpoints kept on disk
    gif_frame_ms: int = 400  # milliseconds per GIF frame
    track_ssim: bool = True  # record best-match SSIM and diversity on a small sample every epoch
    # quality figures against the validate split every N epochs and after the last (their cost: README,
    # "Quality during training"); they pick the exported generator (dcganlib.tracking); 0 = off (the last
    # epoch's generator is exported)
    eval_every: int = 2
    tensorboard: bool = True  # write RUN/tensorboard/ event files (dcganlib/summaries.py)
    tensorboard_every_steps: int = 10  # TensorBoard losses: mean over every N training steps
    verbose: Optional[int] = None  # Keras verbosity; None = progress bar in a TTY, one line per epoch otherwise

    def __post_init__(self) -> None:
        _validate(self)

    # ------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self, path: str | os.PathLike) -> None:
        """Write the config as indented JSON (atomically: temp file, then rename)."""
        write_json(path, self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Config":
        """Build a config from a mapping; unknown keys raise :class:`ConfigError` naming them."""
        if not isinstance(values, dict):
            raise ConfigError(f"config must be a JSON object of key/value pairs, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown config key(s): {', '.join(unknown)}; valid keys are: {', '.join(sorted(known))}"
            )
        return cls(**values)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "Config":
        """The config in a user's JSON file (``--config``); keys the file lacks take today's defaults. A run's saved
        ``config.json`` is read by :func:`read_saved_config` instead."""
        return _config_from_file(path, saved=False)[0]

    def replace(self, **changes: Any) -> "Config":
        """A copy with some fields changed (validated like any config)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(f"unknown config key(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def diff(self, other: "Config", ignore: tuple[str, ...] = OUTPUT_ONLY_KEYS,
             missing: tuple[str, ...] = ()) -> dict[str, tuple]:
        """Fields whose values differ: ``{key: (self_value, other_value)}``, skipping ``ignore``.

        ``missing`` are keys that the file ``self`` was read from lacks (:func:`read_saved_config`): they
        differ whatever their value, shown as :data:`MISSING`.
        """
        a, b = self.to_dict(), other.to_dict()
        return {k: (MISSING if k in missing else a[k], b[k]) for k in a
                if k not in ignore and (a[k] != b[k] or k in missing)}

    def describe_diff(self, other: "Config", labels: tuple[str, str] = ("saved", "now"),
                      missing: tuple[str, ...] = (), only: Optional[list[str]] = None) -> str:
        """:meth:`diff` as one line, ``"batch_size: saved 16, now 8; seed: saved 3, now 4"`` ("" if equal);
        ``only`` restricts it to those keys."""
        first, second = labels
        return "; ".join(f"{k}: {first} {a if a is MISSING else repr(a)}, {second} {b!r}"
                         for k, (a, b) in sorted(self.diff(other, missing=missing).items())
                         if only is None or k in only)

    def architecture_diff(self, other: "Config", missing: tuple[str, ...] = ()) -> list[str]:
        """The keys of :data:`ARCHITECTURE_KEYS` / :data:`SWITCH_KEYS` for which ``other`` builds other
        networks (or another checkpoint) than ``self``; a key in ``missing`` always counts."""
        changed = {k for k in ARCHITECTURE_KEYS if k in missing or getattr(self, k) != getattr(other, k)}
        changed |= {k for k in SWITCH_KEYS if k in missing or (getattr(self, k) > 0) != (getattr(other, k) > 0)}
        if self.generator == other.generator == "radford" and "generator_upsample" not in missing:
            changed.discard("generator_upsample")  # transposed convolutions do not upsample by interpolation
        return sorted(changed)


def parse_widths(text: str) -> tuple[int, ...]:
    """``"512,128,48,16"`` → ``(512, 128, 48, 16)`` (config key ``g_widths``; ``""`` → ``()``); anything but
    comma-separated integers in 1–4096 raises :class:`ConfigError`. Their number is checked against the image
    size where the networks are built (``models.generator_widths``)."""
    if not text.strip():
        return ()
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"config key 'g_widths' must be comma-separated integers like \"512,128,48,16\"; "
                          f"got {text!r}") from None
    if not all(1 <= w <= 4096 for w in widths):
        raise ConfigError(f"config key 'g_widths' must list widths from 1 to 4096; got {text!r}")
    return widths


def _config_from_file(path: str | os.PathLike, saved: bool) -> tuple[Config, dict[str, Any]]:
    """``(config, the values read)`` from a JSON file; any problem raises :class:`ConfigError` naming the file.
    ``saved`` (a run's ``config.json``): the :data:`ADDED_SWITCHES` it lacks are filled in as off."""
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder; pass the JSON file inside it") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid JSON: {exc}") from None
    if saved and isinstance(values, dict):
        values = {**{key: off for key, off in ADDED_SWITCHES.items() if key not in values}, **values}
    try:
        return Config.from_dict(values), values
    except ConfigError as exc:  # name the file: it may be a run's config.json, not one the user passed
        raise ConfigError(f"{exc} (in {path})") from None


def read_saved_config(path: str | os.PathLike) -> tuple[Config, tuple[str, ...]]:
    """``(config, missing)``: a run's saved ``config.json``, and the keys it lacks (they take today's defaults),
    except those of :data:`ADDED_SWITCHES`, which read as off (the value of a run saved before they existed).

    Anything that is not a readable JSON object of valid keys raises :class:`ConfigError` naming the file:
    a missing file, a folder, bytes that are not UTF-8 JSON, a list, an unknown key, a bad value.
    """
    config, values = _config_from_file(path, saved=True)
    return config, tuple(sorted({f.name for f in fields(Config)} - set(values)))


def default_config(**changes: Any) -> Config:
    """The README main job: embedded MNI152 demo slices, 64×64, resize-convolution G (width 32), D (width 16),
    batch 32, lazy R1 (γ 0.025 every 4th step, warmed up over 3,900 steps), EMA 0.998 with warm-up 0.05,
    39 epochs (1,950 steps)."""
    return Config().replace(**changes) if changes else Config()


def radford_config(**changes: Any) -> Config:
    """The networks of Radford et al. 2015: transposed-convolution G, widths 64 (G 512-256-128-64 at 64 px)."""
    return Config(generator="radford", g_filters=64, d_filters=64, batch_size=64, ema=0.0, ema_rampup=0.0,
                  r1_gamma=0.0, penalty_every=1, penalty_rampup=0, epochs=20).replace(**changes)


#: ``--preset long``: the default recipe for 4× the default budget. With R1's warm-up it scored better at 4×
#: than every recipe measured without the warm-up, and than γ 0.1 after the warm-up, learning-rate decay or a D
#: as wide as G on top of it (docs/recipes.md, "R1 with a warm-up").
LONG_EPOCHS = 156


def long_config(**changes: Any) -> Config:
    """For more compute: the default recipe trained 4× as long (:data:`LONG_EPOCHS`, 7,800 steps); about 4× the
    default run's time. The run exports its best epoch, so the extra epochs never make the result worse."""
    return Config(epochs=LONG_EPOCHS).replace(**changes)


def smoke_config(**changes: Any) -> Config:
    """Tiny and fast, for tests and CI: 32 px, small networks, 2 epochs on ≤ 64 images; the default's R1
    penalty on every step (``penalty_every`` 1), so that one train step is compiled instead of two — the
    lazy schedule has tests of its own — and at full strength from the first step (``penalty_rampup`` 0: a
    run of a few steps would otherwise see almost none of it; the warm-up has tests of its own)."""
    base = Config(
        image_size=32,
        max_images=64,
        demo_count=120,
        g_filters=16,
        d_filters=16,
        latent_dim=32,
        batch_size=16,
        epochs=2,
        grid_size=16,
        precision="float32",
        jit_compile=False,
        track_ssim=False,
        eval_every=1,
        penalty_every=1,
        penalty_rampup=0,
        verbose=0,
    )
    return base.replace(**changes) if changes else base


PRESETS = {"default": default_config, "long": long_config, "radford": radford_config, "smoke": smoke_config}

#: ``DCGANLIB_SMOKE=1`` switches the notebooks (and the README test command) to the smoke preset.
SMOKE_ENV = "DCGANLIB_SMOKE"


def smoke_requested() -> bool:
    """True when ``$DCGANLIB_SMOKE`` is ``"1"`` (CI and the test command set it)."""
    return os.environ.get(SMOKE_ENV) == "1"


#: Where the committed report figures live, relative to ``notebooks/``; only the documented full run
#: (:func:`notebook_setup`) writes there unless a notebook's ``IMAGES`` asks for it.
REPORT_IMAGES = Path("../images")


@dataclass(frozen=True)
class NotebookSetup:
    """What a notebook chapter runs with: the config, and where its run and figures go.

    Paths are relative to ``notebooks/`` (the working directory of Jupyter, papermill and nbval).
    """

    config: Config
    smoke: bool
    run_dir: Path  # the run chapters 3 and 4 share
    images: Path  # report figures (PNG + PDF)

    @property
    def writes_report_figures(self) -> bool:
        """True when the figures go to the tracked ``images/`` folder."""
        return self.images == REPORT_IMAGES


def notebook_setup(*, smoke: Optional[bool] = None, data: Optional[str] = None, image_size: Optional[int] = None,
                   epochs: Optional[int] = None, run_dir: Optional[str] = None, images: Optional[str] = None,
                   **changes: Any) -> NotebookSetup:
    """The settings of a notebook chapter, from its parameters cell (``None`` = the preset's value).

    ``smoke`` (None: :func:`smoke_requested`) picks :func:`smoke_config` — 32 px, 64 images, 2 epochs,
    its run in ``../runs/notebook-smoke`` — or :func:`default_config` with ``../runs/notebook``.
    ``changes`` are further config keys (e.g. ``track_ssim=True``).

    Figures (``images`` None) go to :data:`REPORT_IMAGES` only for the **documented full run**: not smoke,
    the embedded demo data, the default image size and epochs. Any other run writes them beside its run
    folder (``RUN_DIR-images``; smoke: ``../runs/smoke-images``), so neither the tests nor a student's own
    data ever replace the committed figures; an explicit ``images`` is used as given.
    """
    smoke = smoke_requested() if smoke is None else smoke
    given = {"data": data, "image_size": image_size, "epochs": epochs}
    config = (smoke_config if smoke else default_config)(**{k: v for k, v in given.items() if v is not None},
                                                         **changes)
    run = Path(run_dir or ("../runs/notebook-smoke" if smoke else "../runs/notebook"))
    documented = (not smoke and config.data is None and config.image_size == Config.image_size
                  and config.epochs == Config.epochs)
    if images is not None:
        folder = Path(images)
    elif smoke:
        folder = Path("../runs/smoke-images")
    else:
        folder = REPORT_IMAGES if documented else run.parent / f"{run.name}-images"
    return NotebookSetup(config=config, smoke=smoke, run_dir=run, images=folder)


# ------------------------------------------------------------------------------------------------
def _check_type(name: str, value: Any, types: tuple[type, ...], optional: bool = False) -> None:
    if value is None and optional:
        return
    # bool is an int subclass; never accept True for an int field
    if isinstance(value, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types)
    if not ok:
        expected = " or ".join(t.__name__ for t in types) + (" or null" if optional else "")
        raise ConfigError(f"config key '{name}' must be {expected}, got {value!r}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"config key '{name}' must be one of {', '.join(choices)}; got {value!r}")


def _check_range(name: str, value: float, low: float, high: float, *, low_open: bool = False,
                 high_open: bool = False) -> None:
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ConfigError(f"config key '{name}' must be in {lo}{low}, {high}{hi}; got {value!r}")


def _check_residual(c: Config) -> None:
    """The keys that the residual networks do not have, refused instead of ignored."""
    if c.generator == "residual":
        if c.generator_upsample == "subpixel":
            raise ConfigError("config key 'generator_upsample' must be nearest or bilinear with generator 'residual'; "
                              "got 'subpixel'")
        for key, off in (("g_head_filters", 0), ("g_excitation", False), ("g_bfloat16_rounding", False)):
            if getattr(c, key) != off:
                raise ConfigError(f"config key '{key}' applies to the radford and resize generators; set it to "
                                  f"{json.dumps(off)} with generator 'residual'")
        if c.generator_activation == "elu":
            raise ConfigError("generator 'residual' needs generator_activation relu or leaky_relu (its initial weights "
                              "are scaled by the activation's gain); got 'elu'")
    if c.discriminator == "residual":
        if c.d_norm != "none":
            raise ConfigError("the residual discriminator has no normalisation: set config key 'd_norm' to \"none\" "
                              f"with discriminator 'residual' (got {c.d_norm!r})")
        for key, off in (("d_stem_filters", 0), ("d_dropout", 0.0)):
            if getattr(c, key) != off:
                raise ConfigError(f"config key '{key}' applies to the dcgan discriminator; set it to "
                                  f"{json.dumps(off)} with discriminator 'residual'")


def _validate(c: Config) -> None:
    num = (int, float)
    for name in ("image_size", "channels", "demo_count", "latent_dim", "g_filters", "g_head_filters", "d_filters",
                 "batch_size", "epochs", "seed", "nifti_axis", "grid_size", "checkpoint_every",
                 "keep_checkpoints", "gif_frame_ms", "penalty_every", "penalty_rampup", "eval_every",
                 "d_minibatch_std", "d_stem_filters"):
        _check_type(name, getattr(c, name), (int,))
    for name in ("val_fraction", "test_fraction", "d_dropout", "label_smoothing", "ema", "ema_rampup", "r1_gamma",
                 "ada_target", "lr_decay", "d_reconstruct", "g_feature_matching",
                 "r2_gamma", "g_learning_rate",
                 "d_learning_rate", "beta_1", "beta_2"):
        _check_type(name, getattr(c, name), num)
        if not math.isfinite(getattr(c, name)):  # NaN passes every range comparison; Infinity is valid JSON too
            raise ConfigError(f"config key '{name}' must be a finite number; got {getattr(c, name)!r}")
    for name in ("data", "subject_regex", "cache_dir"):
        _check_type(name, getattr(c, name), (str,), optional=True)
    _check_type("max_images", c.max_images, (int,), optional=True)
    _check_type("jit_compile", c.jit_compile, (bool,), optional=True)
    _check_type("track_ssim", c.track_ssim, (bool,))
    _check_type("tensorboard", c.tensorboard, (bool,))
    _check_type("tensorboard_every_steps", c.tensorboard_every_steps, (int,))
    _check_range("tensorboard_every_steps", c.tensorboard_every_steps, 1, 1_000_000)
    _check_type("verbose", c.verbose, (int,), optional=True)
    for name, choices in (("generator", GENERATORS), ("discriminator", DISCRIMINATORS),
                          ("generator_start", GENERATOR_STARTS),
                          ("generator_upsample", UPSAMPLINGS),
                          ("generator_activation", ACTIVATIONS), ("loss", LOSSES), ("d_norm", D_NORMS),
                          ("precision", PRECISIONS), ("strategy", STRATEGIES)):
        _check_type(name, getattr(c, name), (str,))
        _check_choice(name, getattr(c, name), choices)

    _check_range("image_size", c.image_size, 8, 1024)
    if c.channels not in (1, 3):
        raise ConfigError(f"config key 'channels' must be 1 (grayscale) or 3 (RGB); got {c.channels}")
    if c.max_images is not None:
        _check_range("max_images", c.max_images, 1, 10**9)
    _check_range("val_fraction", c.val_fraction, 0.0, 1.0, high_open=True)
    _check_range("test_fraction", c.test_fraction, 0.0, 1.0, high_open=True)
    if c.val_fraction + c.test_fraction >= 1.0:
        raise ConfigError("config keys 'val_fraction' + 'test_fraction' must leave subjects for training "
                          f"(sum < 1); got {c.val_fraction} + {c.test_fraction}")
    _check_range("nifti_axis", c.nifti_axis, 0, 2)
    _check_range("demo_count", c.demo_count, *DEMO_COUNT_RANGE)
    _check_range("latent_dim", c.latent_dim, 1, 4096)
    _check_range("g_filters", c.g_filters, 1, 4096)
    _check_range("g_head_filters", c.g_head_filters, 0, 4096)
    _check_range("d_filters", c.d_filters, 1, 4096)
    _check_range("d_dropout", c.d_dropout, 0.0, 1.0, high_open=True)
    _check_range("label_smoothing", c.label_smoothing, 0.0, 0.5)
    _check_range("ema", c.ema, 0.0, 1.0, high_open=True)
    _check_range("ema_rampup", c.ema_rampup, 0.0, 1.0)
    _check_range("r1_gamma", c.r1_gamma, 0.0, 1e4)
    _check_range("d_reconstruct", c.d_reconstruct, 0.0, 1e4)
    _check_range("g_feature_matching", c.g_feature_matching, 0.0, 1e4)
    _check_range("d_minibatch_std", c.d_minibatch_std, 0, 1024)
    _check_range("d_stem_filters", c.d_stem_filters, 0, 1024)
    _check_range("r2_gamma", c.r2_gamma, 0.0, 1e4)
    _check_range("penalty_every", c.penalty_every, 1, 1000)
    _check_range("penalty_rampup", c.penalty_rampup, 0, 10**9)
    _check_type("g_widths", c.g_widths, (str,))
    parse_widths(c.g_widths)
    _check_type("g_excitation", c.g_excitation, (bool,))
    _check_type("g_bfloat16_rounding", c.g_bfloat16_rounding, (bool,))
    _check_type("mirror", c.mirror, (bool,))
    _check_type("augment", c.augment, (str,))
    unknown = sorted({p.strip() for p in c.augment.split(",") if p.strip()} - set(AUGMENTATIONS))
    if unknown:
        raise ConfigError(f"config key 'augment' has unknown policy {', '.join(unknown)}; use a comma-separated "
                          f"list of {', '.join(AUGMENTATIONS)} (or \"\" for none)")
    _check_range("ada_target", c.ada_target, 0.0, 1.0, high_open=True)
    if c.ada_target and not c.augment:
        raise ConfigError("config key 'ada_target' adapts the probability of the 'augment' policies; set augment "
                          "too, e.g. \"translation,cutout\" (or ada_target 0)")
    _check_range("lr_decay", c.lr_decay, 0.0, 1.0, high_open=True)
    _check_range("eval_every", c.eval_every, 0, 1_000_000)
    _check_residual(c)
    if c.label_smoothing and c.loss != "bce":
        raise ConfigError("config key 'label_smoothing' applies to loss 'bce' only; "
                          f"set it to 0 for loss {c.loss!r}")
    _check_range("g_learning_rate", c.g_learning_rate, 0.0, 1.0, low_open=True)
    _check_range("d_learning_rate", c.d_learning_rate, 0.0, 1.0, low_open=True)
    _check_range("beta_1", c.beta_1, 0.0, 1.0, high_open=True)
    _check_range("beta_2", c.beta_2, 0.0, 1.0, high_open=True)
    _check_range("batch_size", c.batch_size, 1, 65536)
    _check_range("epochs", c.epochs, 1, 1_000_000)
    _check_range("seed", c.seed, 0, MAX_SEED)
    root = round(c.grid_size ** 0.5)
    if c.grid_size < 1 or root * root != c.grid_size:
        raise ConfigError(f"config key 'grid_size' must be a square number (4, 9, 16, 36, 64…); got {c.grid_size}")
    _check_range("checkpoint_every", c.checkpoint_every, 1, 1_000_000)
    _check_range("keep_checkpoints", c.keep_checkpoints, 1, 1000)
    _check_range("gif_frame_ms", c.gif_frame_ms, *GIF_FRAME_MS_RANGE)
