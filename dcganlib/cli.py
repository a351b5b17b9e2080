"""``python -m dcganlib`` — a thin command line over the library.

Every sub-command parses its flags here and calls one library function; all logic lives in the
modules. User errors (:class:`~dcganlib.errors.DcganlibError`) print one line and exit non-zero.
TensorFlow is imported only by the sub-commands that need it, so ``--help`` answers instantly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NoReturn, Optional, Sequence

from .config import GENERATORS, GIF_FRAME_MS_RANGE, LOSSES, PRECISIONS, PRESETS, Config, read_saved_config
from .errors import ConfigError, DcganlibError
from .files import disk_full_reason

EPILOG = """examples:
  python -m dcganlib demo-data data/demo --count 2000      # build the embedded MNI152 dataset
  python -m dcganlib train --out runs/default              # train on it at 64x64
  python -m dcganlib train --data keras_png_slices_data --out runs/oasis --epochs 50
  python -m dcganlib train --out runs/oasis --resume --epochs 80   # continue a killed/finished run
  python -m dcganlib train --out runs/oasis --resume --lr-scale 0.5  # after a NaN: half the learning rates
  python -m dcganlib generate runs/default --count 100 --out generated/ --grid
  python -m dcganlib evaluate runs/default
  python -m dcganlib evaluate --images other_gan/samples --reference keras_png_slices_data
  python -m dcganlib bench --image-size 64 --batch-size 64
"""


class _Parser(argparse.ArgumentParser):
    """argparse with the library's one-line errors: ``dcganlib: error: …`` and exit code 2 (sub-commands
    inherit the class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"dcganlib: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m dcganlib",
        description="Train DCGANs (Radford et al. 2015) on medical image slices, generate and evaluate images.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's own log lines (hidden by default; also DCGANLIB_VERBOSE=1)")
    for add in (_add_demo_data, _add_train, _add_generate, _add_gif, _add_evaluate, _add_curves, _add_bench):
        add(_SubParsers(sub, common), argparse.ArgumentDefaultsHelpFormatter)
    return parser


class _SubParsers:
    """``add_subparsers()``'s object, giving every command the options of ``common`` (``--verbose``)."""

    def __init__(self, sub: Any, common: argparse.ArgumentParser) -> None:
        self.sub, self.common = sub, common

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return self.sub.add_parser(name, parents=[self.common], **kwargs)


def _add_demo_data(sub: Any, fmt: type) -> None:
    p = sub.add_parser(
        "demo-data", formatter_class=fmt,
        help="write the embedded MNI152-based brain-MRI dataset as PNGs in the OASIS folder layout",
        description="Build an OASIS-like set of axial brain slices from the MNI152 2009 T1 template that "
                    "ships inside nilearn: each slice is randomly deformed to stand in for a different "
                    "subject. Deterministic for a given --seed. Nothing is downloaded.")
    p.add_argument("out_dir", type=Path, help="folder to write keras_png_slices_{train,validate,test}/ into")
    p.add_argument("--count", type=int, default=2000, help="total number of slices over all splits")
    p.add_argument("--size", type=int, default=256, help="side of the square PNGs in pixels")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same files")


def _add_train(sub: Any, fmt: type) -> None:
    p = sub.add_parser(
        "train", formatter_class=fmt,
        help="train a DCGAN; writes config.json, history.csv, grids/, training.gif, checkpoints/, generator.keras",
        description="Train a DCGAN. Settings come from a preset (--preset, default 'default'), then --config FILE, "
                    "then the flags below. With --resume the run folder's saved config.json is the base and "
                    "training continues from the latest checkpoint up to --epochs in total.")
    p.add_argument("--data", default=None,
                   help="folder of PNG/JPEG/TIFF/.npy slices, NIfTI volumes or DICOM files/series, or an OASIS "
                        "keras_png_slices_* folder; default: the embedded MNI152 demo dataset")
    p.add_argument("--out", type=Path, default=Path("runs/default"), help="run folder")
    p.add_argument("--image-size", type=int, default=None, help="square image side (default 64; smoke 32)")
    p.add_argument("--epochs", type=int, default=None,
                   help="total epochs of the run; with --resume, trains only the missing ones")
    p.add_argument("--batch-size", type=int, default=None, help="images per step (default 32)")
    p.add_argument("--max-images", type=int, default=None, help="use at most N training images")
    p.add_argument("--seed", type=int, default=None, help="one seed for split, shuffling, noise, init")
    p.add_argument("--generator", choices=GENERATORS, default=None,
                   help="radford: transposed convolutions; resize: upsample+conv (no checkerboard)")
    p.add_argument("--loss", choices=LOSSES, default=None, help="GAN loss pair")
    p.add_argument("--precision", choices=PRECISIONS,
                   default=None, help="numeric policy; auto picks the fastest safe one for the hardware")
    p.add_argument("--config", type=Path, default=None, help="JSON file with config keys (see config.py)")
    p.add_argument("--preset", choices=tuple(PRESETS), default=None,
                   help="default: 64 px, resize-conv G width 32, D width 16, batch 32, lazy R1, EMA, 39 epochs (the "
                        "README main job); long: the default 4x as long (156 epochs) with a stronger R1, for "
                        "more compute; radford: the paper's networks (transposed convs, widths 64, batch 64, 20 "
                        "epochs, ~3.6x the compute per epoch); "
                        "smoke: tiny, for tests/CI")
    p.add_argument("--smoke", action="store_true", help="same as --preset smoke: 32 px, 2 epochs, 64 images")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--no-tensorboard", dest="tensorboard", action="store_false", default=None,
                   help="do not write RUN/tensorboard/ (config key 'tensorboard'; on by default)")
    p.add_argument("--overwrite", action="store_true", help="delete an existing run folder and start afresh")
    p.add_argument("--force", action="store_true",
                   help="with --resume: accept settings that differ from the saved config.json")
    p.add_argument("--lr-scale", type=float, default=1.0, metavar="FACTOR",
                   help="multiply both learning rates by FACTOR and save them in config.json; after a "
                        "divergence: --resume --lr-scale 0.5 continues from the last good checkpoint "
                        "(no --force needed for this change)")


def _add_generate(sub: Any, fmt: type) -> None:
    p = sub.add_parser("generate", formatter_class=fmt, help="write images from a trained run's generator",
                       description="Sample z ~ N(0, I) and write the generated images as 8-bit PNGs.")
    p.add_argument("run_dir", type=Path, help="a run folder holding generator.keras (or checkpoints/)")
    p.add_argument("--count", type=int, default=64, help="number of images")
    p.add_argument("--out", type=Path, default=None, help="output folder (default RUN_DIR/generated)")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--grid", action="store_true", help="also write grid.png with all images")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the images an earlier generate wrote into --out (listed in its generated.json); "
                        "without it --out must be absent or empty")
    p.add_argument("--npy", action="store_true",
                   help="also write generated.npy: all images as one uint8 (N, H, W, C) array (np.load)")
    p.add_argument("--epoch", type=int, default=None,
                   help="use the generator of this epoch (a checkpoint or the best epoch's file still on disk) "
                        "instead of generator.keras, the best epoch's")


def _add_gif(sub: Any, fmt: type) -> None:
    p = sub.add_parser("gif", formatter_class=fmt, help="(re)build the GIF of a run's per-epoch grids")
    p.add_argument("run_dir", type=Path, help="a run folder holding grids/epoch_*.png")
    p.add_argument("--out", type=Path, default=None, help="GIF path (default RUN_DIR/training.gif)")
    p.add_argument("--frame-ms", type=int, default=None,
                   help=f"milliseconds per frame, {GIF_FRAME_MS_RANGE[0]}-{GIF_FRAME_MS_RANGE[1]} (default: the run's "
                        "config)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")


def _add_evaluate(sub: Any, fmt: type) -> None:
    p = sub.add_parser(
        "evaluate", formatter_class=fmt,
        help="every quality figure beside the value real images reach: two-sample test, feature metrics, "
             "spectrum, intensity, SSIM family, memorisation -> metrics.json",
        description="Evaluate a run (RUN_DIR) or any folder / .npy of generated images (--images) against held-out "
                    "real images. Every figure is also computed, the same way and at the same sample sizes, for "
                    "real images of unseen subjects in the generated images' place (the 'real reference'). "
                    "SSIM is Wang et al. 2004 (11x11 Gaussian, sigma 1.5, K1 0.01, K2 0.03) on [-1, 1], data range 2.")
    p.add_argument("run_dir", type=Path, nargs="?", default=None, help="a trained run folder (or use --images)")
    p.add_argument("--images", type=Path, default=None,
                   help="instead of a run: a folder of generated PNG/JPEG/TIFF images or a .npy stack (N, H, W) "
                        "from any tool, scored against --reference")
    p.add_argument("--reference", default=None,
                   help="real images: with RUN_DIR, replaces the run's held-out images; with --images, the real data "
                        "(read and split like training data; default: the embedded demo dataset)")
    p.add_argument("--out", type=Path, default=None,
                   help="metrics.json path (default RUN_DIR/evaluation/metrics.json, figures always there; with "
                        "--images: IMAGES-evaluation/metrics.json, figures beside it)")
    p.add_argument("--inception-weights", type=Path, default=None,
                   help="InceptionV3 weights (.h5/.weights.h5) for FID/KID; default: Keras cache if present")
    p.add_argument("--seed", type=int, default=0, help="seed for sampling and every random choice of the evaluation")
    p.add_argument("--epoch", type=int, default=None,
                   help="grade the generator of this epoch (a checkpoint or the best epoch's file still on disk) "
                        "instead of generator.keras, the best epoch's; its figures go to RUN_DIR/evaluation/epoch_NNNN/")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out file, and with --images the figures evaluate writes beside it "
                        "(the default metrics.json and figures of a run are always rewritten)")
    p.add_argument("--no-figures", dest="figures", action="store_false",
                   help="write metrics.json only (the same numbers; figures_dir null), without drawing the figures, "
                        "which take longer than every metric on small sets; figures already on disk are left as they are")
    from .pixels import VALUE_RANGES

    p.add_argument("--value-range", choices=tuple(VALUE_RANGES), default=None, metavar="RANGE",
                   help="with --images: the range float images were saved in, 0,1 or -1,1 (write "
                        "--value-range=-1,1); default: "
                        "detected, and values within [0, 1] are refused as ambiguous. uint8 is read as is, uint16 "
                        "as value/257; nothing is stretched")


def _add_curves(sub: Any, fmt: type) -> None:
    p = sub.add_parser(
        "curves", formatter_class=fmt,
        help="quality against compute: the per-epoch figures of finished runs at given budgets, beside the real "
             "reference (a Markdown table), and the curves as figures",
        description="Read the per-epoch quality figures (history.csv val_* columns, run.json real reference) of "
                    "runs trained with eval_every > 0. Runs named RECIPE-sSEED are one recipe's seeds. Prints, per "
                    "recipe and budget, the figures of the epoch a run stopped at that budget would export (its "
                    "best val_score so far; mean and range over seeds) and the real reference.")
    p.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="run folders")
    p.add_argument("--budget", type=int, action="append", default=None, metavar="IMAGES",
                   help="a budget in images seen (repeat for several; default: the longest run's)")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for the curves against images seen and seconds, the grids at each budget "
                        "(PNG + PDF) and the table (Markdown + JSON); default: none, only the printed table")
    p.add_argument("--overwrite", action="store_true", help="replace existing figures in --out")


def _add_bench(sub: Any, fmt: type) -> None:
    p = sub.add_parser("bench", formatter_class=fmt,
                       help="measure training-step, input-pipeline and end-to-end speed against a reference")
    p.add_argument("--preset", choices=tuple(p for p in PRESETS if p != "smoke"), default=None,
                   help="networks to time: the default (resize-conv G width 32, D width 16; when neither --preset "
                        "nor --config is given) or the paper's (widths 64)")
    p.add_argument("--config", type=Path, default=None,
                   help="time the networks and recipe of this JSON config instead of a preset (keys missing from "
                        "the file take the defaults; --image-size, --batch-size and --precision still apply)")
    p.add_argument("--image-size", type=int, default=64, help="square image side")
    p.add_argument("--batch-size", type=int, default=64, help="images per step")
    p.add_argument("--steps", type=int, default=20, help="timed steps per repeat")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="precision of the library step (the reference is always float32)")
    p.add_argument("--repeats", type=int, default=5,
                   help="interleaved repeats of every path (medians and min-max spreads are over these)")
    p.add_argument("--ssim-count", type=int, default=1000,
                   help="time best-match SSIM of this many 64x64 images against as many (0 = skip)")
    p.add_argument("--memory", action="store_true",
                   help="also measure the peak RSS of decoding --memory-count 256x256 PNGs (slow: builds them once)")
    p.add_argument("--memory-count", type=int, default=10_000, help="images for --memory")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def train_config(args: argparse.Namespace):
    """The :class:`~dcganlib.config.Config` a ``train`` command line asks for (validated, nothing trained).

    Base settings, first match wins: ``--config FILE`` (keys missing from the file take the defaults),
    ``--preset``/``--smoke``, the run folder's saved ``config.json`` on ``--resume``, the default preset;
    then every flag given on the command line replaces its key.
    """
    from . import runs

    overrides = {
        "data": args.data,
        "image_size": args.image_size,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "max_images": args.max_images,
        "seed": args.seed,
        "generator": args.generator,
        "loss": args.loss,
        "precision": args.precision,
        "tensorboard": args.tensorboard,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if args.smoke and args.preset not in (None, "smoke"):
        raise ConfigError(f"--smoke and --preset {args.preset} contradict each other; give one of them")
    preset = "smoke" if args.smoke else args.preset
    saved = args.out / runs.CONFIG_FILE
    if args.config is not None:
        if preset is not None:
            raise ConfigError("--config FILE and --preset/--smoke both choose the base settings; give one of them")
        base = Config.from_json(args.config)
    elif preset is not None:
        base = PRESETS[preset]()
    elif args.resume and saved.exists():
        base = read_saved_config(saved)[0]
    else:
        base = PRESETS["default"]()
    return base.replace(**overrides)


def _train(args: argparse.Namespace) -> int:
    config = train_config(args)

    from .training import train

    train(config, args.out, resume=args.resume, overwrite=args.overwrite, force=args.force,
          lr_scale=args.lr_scale)
    return 0


def _demo_data(args: argparse.Namespace) -> int:
    import time

    from .data.demo import build_demo_dataset, summary_line

    start = time.perf_counter()
    out = build_demo_dataset(args.out_dir, count=args.count, size=args.size, seed=args.seed)
    print(summary_line(out, time.perf_counter() - start))
    return 0


def _generate(args: argparse.Namespace) -> int:
    from .sampling import generate

    if args.epoch is not None and args.epoch < 1:
        raise ConfigError("--epoch takes a positive epoch number")
    generate(args.run_dir, count=args.count, out_dir=args.out, seed=args.seed, grid=args.grid,
             overwrite=args.overwrite, npy=args.npy, epoch=args.epoch)
    return 0


def _gif(args: argparse.Namespace) -> int:
    from .files import check_output_file
    from .images import make_run_gif

    low, high = GIF_FRAME_MS_RANGE
    if args.frame_ms is not None and not low <= args.frame_ms <= high:
        raise ConfigError(f"--frame-ms must be a whole number of milliseconds in [{low}, {high}]; got {args.frame_ms}")
    if args.out is not None:  # the run's own training.gif (the default) is rebuilt from its grids
        check_output_file(args.out, overwrite=args.overwrite)
    make_run_gif(args.run_dir, out=args.out, frame_ms=args.frame_ms)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    if (args.run_dir is None) == (args.images is None):
        raise ConfigError("evaluate needs either a run folder (RUN_DIR) or --images PATH, not both")
    if args.epoch is not None and (args.images is not None or args.epoch < 1):
        raise ConfigError("--epoch takes a positive epoch number of a run folder (RUN_DIR)")
    if args.value_range is not None and args.images is None:
        raise ConfigError("--value-range describes the files of --images; a run's generator needs none")
    if args.out is not None:  # refused now, not after the evaluation
        from .files import check_output_file

        check_output_file(args.out, overwrite=args.overwrite)
    from .evaluate import evaluate_images, evaluate_run

    if args.images is not None:
        evaluate_images(args.images, reference=args.reference, out=args.out,
                        inception_weights=args.inception_weights, seed=args.seed, value_range=args.value_range,
                        overwrite=args.overwrite, figures=args.figures)
    else:
        evaluate_run(args.run_dir, reference=args.reference, out=args.out,
                     inception_weights=args.inception_weights, seed=args.seed, epoch=args.epoch,
                     overwrite=args.overwrite, figures=args.figures)
    return 0


def _curves(args: argparse.Namespace) -> int:
    from .curves import (BUDGET_GRIDS_FIGURE, BUDGET_TABLE_FILES, CURVE_FIGURES, budget_grids, budget_table,
                         markdown_table, read_curve, write_budget_table)
    from . import report
    from .config import default_config

    if args.budget is not None and min(args.budget) < 1:
        raise ConfigError("--budget takes a positive number of images seen, e.g. --budget 67200")
    if args.out is not None:  # refused before reading anything
        from .files import check_output_file

        for name in (*CURVE_FIGURES, BUDGET_GRIDS_FIGURE):
            for suffix in (".png", ".pdf"):
                check_output_file(args.out / f"{name}{suffix}", overwrite=args.overwrite)
        for name in BUDGET_TABLE_FILES.values():
            check_output_file(args.out / name, overwrite=args.overwrite)
    curves = [read_curve(run_dir) for run_dir in args.run_dirs]
    budgets = args.budget or [int(max(curve.images[-1] for curve in curves if len(curve.images)))]
    table = budget_table(curves, budgets)
    print(markdown_table(table))
    # The rule recipes are judged by: does the longest budget beat the default budget on every figure?
    default_epochs = default_config().epochs
    verdicts = report.longer_training_sentences(table, default_epochs)
    if verdicts:
        print(f"\nAgainst the default budget ({default_epochs} epochs), per recipe:")
        print("\n".join(verdicts))
    if args.out is not None:
        from .plots import plot_budget_grids, plot_quality_curves, save_figure

        args.out.mkdir(parents=True, exist_ok=True)
        write_budget_table(table, args.out)
        for name, x in CURVE_FIGURES.items():
            save_figure(plot_quality_curves(curves, x=x, budgets=budgets), name, args.out, close=True)
        grids = budget_grids(curves, budgets)
        if grids:  # runs without grids (grid_size 0) have none to show
            save_figure(plot_budget_grids(grids), BUDGET_GRIDS_FIGURE, args.out, close=True)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from .bench import run_benchmark

    if args.config is not None and args.preset is not None:
        raise ConfigError("--config FILE and --preset both choose the networks to time; give one of them")
    config = Config.from_json(args.config) if args.config is not None else PRESETS[args.preset or "default"]()
    run_benchmark(image_size=args.image_size, batch_size=args.batch_size, steps=args.steps,
                  precision=args.precision, as_json=args.json, repeats=args.repeats, ssim_count=args.ssim_count,
                  memory=args.memory, memory_count=args.memory_count, config=config)
    return 0


COMMANDS = {
    "demo-data": _demo_data,
    "train": _train,
    "generate": _generate,
    "gif": _gif,
    "evaluate": _evaluate,
    "curves": _curves,
    "bench": _bench,
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a flag argparse refused (2, one line printed)
        return exc.code if isinstance(exc.code, int) else 2
    if args.verbose:  # before any command imports TensorFlow
        from .terminal import set_verbose

        set_verbose()
    try:
        return COMMANDS[args.command](args)
    except DcganlibError as exc:
        print(f"dcganlib: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        if disk_full_reason(exc) is None:  # any command that writes stops on a full disk with one line
            raise
        where = f" while writing {exc.filename}" if exc.filename else ""
        print(f"dcganlib: error: {exc.strerror}{where}; files written before are intact, a file being written "
              "was not replaced; free some space and run the command again", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dcganlib: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
