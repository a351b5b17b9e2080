"""The interleaved timing of every training path, its summary, and the report table (:func:`run_benchmark`)."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from . import PNG_SIZE, SSIM_SIZE
from ..config import Config, default_config
from ..errors import ConfigError
from ..models import discriminator_widths, generator_widths
from ..progress import note
from .memory import _png_count, bench_png_folder, measure_cache_memory, peak_rss_mb, time_best_match_ssim
from .reference import ReferenceGAN

def spread(values: Sequence[float]) -> dict[str, float]:
    """``{"median", "min", "max", "q1", "q3", "n"}`` of ``values`` (quartiles by linear interpolation)."""
    array = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(array)), "min": float(array.min()), "max": float(array.max()),
            "q1": float(np.percentile(array, 25)), "q3": float(np.percentile(array, 75)), "n": int(array.size)}


def machine_info() -> dict[str, Any]:
    """The machine as ``run.json`` describes it (:func:`dcganlib.manifest.cpu_record`: CPU model, logical
    CPUs, the CPU flags that matter, oneDNN's instruction-set cap), whether it has bf16 units that oneDNN may
    use, its GPUs and the load averages right now."""
    import tensorflow as tf

    from ..hardware import cpu_supports_bf16
    from ..manifest import cpu_record

    cpu = cpu_record()
    return {"cpu_model": cpu["model"], "logical_cpus": cpu["logical_cpus"], "cpu_flags": cpu["flags"],
            "onednn_max_cpu_isa": cpu["onednn_max_cpu_isa"], "cpu_bf16": cpu_supports_bf16(),
            "gpus": len(tf.config.list_physical_devices("GPU")), "tensorflow": tf.__version__,
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def _step_clock():
    """A Keras callback holding ``(wall, CPU)`` clock readings at the first step's start (``.start``) and at
    the latest step's end (``.end``) of each ``fit()`` call."""
    import keras

    class StepClock(keras.callbacks.Callback):
        start = end = (0.0, 0.0)

        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                self.start = (time.perf_counter(), time.process_time())

        def on_train_batch_end(self, batch, logs=None):
            self.end = (time.perf_counter(), time.process_time())

    return StepClock()


#: Keys the benchmark sets itself (its data, sizes, precision and quiet options), left out of "config_changes".
_BENCH_KEYS = ("data", "image_size", "batch_size", "precision", "cache_dir", "max_images", "seed", "verbose",
               "track_ssim", "strategy")


def _progress(message: str) -> None:
    """One progress line on stderr (stdout stays the table or the one JSON object)."""
    note(message, kind="bench")


def _timed(function: Callable[[], Any]) -> tuple[float, float]:
    """``(wall seconds, CPU seconds of this process, all threads)`` of one call.

    CPU time barely moves with other processes' load (time spent waiting for a core is not counted),
    so images per CPU-second compares paths fairly even on a busy shared machine.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def run_benchmark(image_size: int = 64, batch_size: int = 64, steps: int = 20, precision: str = "auto",
                  as_json: bool = False, *, repeats: int = 5, ssim_count: int = 1000, memory: bool = False,
                  memory_count: int = 10_000, config: Optional[Config] = None, png_root: Optional[Path] = None,
                  seed: int = 0, output: Callable[[str], Any] = print) -> dict[str, Any]:
    """Measure every path of the module docstring ``repeats`` times, interleaved; print and return the results.

    ``config`` (optional) supplies the architecture (widths, generator kind, loss …); ``image_size``,
    ``batch_size`` and ``precision`` override it. ``ssim_count=0`` skips the SSIM timing. ``as_json``
    prints one JSON object (the returned dict) instead of the table. All rates are images/s.
    """
    from ..models import check_image_size

    # Upper bounds keep a typo from building millions of PNGs or running for days.
    for name, value, low, high in (("steps", steps, 1, 10_000), ("repeats", repeats, 1, 1000),
                                   ("batch_size", batch_size, 1, 65536), ("ssim_count", ssim_count, 0, 100_000),
                                   ("memory_count", memory_count, 1, 1_000_000)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"bench: --{name.replace('_', '-')} must be an integer in [{low}, {high}]; "
                              f"got {value!r}")
    check_image_size(image_size)
    load_before = [round(x, 2) for x in os.getloadavg()]
    folder = bench_png_folder(_png_count(steps, batch_size), max(PNG_SIZE, image_size), png_root)
    with tempfile.TemporaryDirectory(prefix="dcganlib-bench-") as decoded_cache:
        base = config if config is not None else default_config()
        cfg = base.replace(data=str(folder), image_size=image_size, batch_size=batch_size, precision=precision,
                           cache_dir=decoded_cache, max_images=steps * batch_size, seed=seed, verbose=0,
                           track_ssim=False, strategy="default")
        paths = _Paths(cfg, steps)
        warmup_s = paths.warm_up()
        cached_load_s = _timed(paths.load)[0]
        timing = _measure_interleaved(paths, steps, repeats)
        reference_trains = paths.reference_trains()
    result = _summarise(cfg, paths, timing, steps, repeats, precision, folder)
    result.update(warmup_s=warmup_s, cached_load_s=cached_load_s, reference_trains=reference_trains)
    result["machine"] = {**machine_info(), "load_average_before": load_before,
                         "load_average_1min_per_repeat": timing["loads"]}
    if ssim_count:
        _progress(f"best-match SSIM of {ssim_count} x {ssim_count} images")
        result["best_match_ssim_count"] = ssim_count
        result["best_match_ssim_s"] = time_best_match_ssim(ssim_count)
        if ssim_count == 1000:
            result["best_match_ssim_1000x1000_s"] = result["best_match_ssim_s"]
    if memory:
        _progress(f"peak memory of decoding {memory_count} PNGs of {PNG_SIZE} px (child processes)")
        result["cache_memory"] = measure_cache_memory(memory_count, PNG_SIZE, png_root)
    result["peak_rss_mb"] = peak_rss_mb()
    result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    for line in ([json.dumps(result, sort_keys=True)] if as_json else format_report(result)):
        output(line)
    return result


class _Paths:
    """The timed paths of one benchmark: the data (first load timed), the GANs and a step function each."""

    def __init__(self, cfg: Config, steps: int) -> None:
        import keras
        import tensorflow as tf

        from ..gan import build_gan
        from ..hardware import resolve_jit_compile, resolve_precision
        from ..pixels import to_float

        self.cfg, self.steps = cfg, steps
        start = time.perf_counter()
        self.splits = self.load()  # the first load decodes every PNG into a fresh decoded-image cache
        self.first_load_s = time.perf_counter() - start
        self.decoded_images = (self.splits.report["train_before_cap"] + len(self.splits.validate)
                               + len(self.splits.test))
        if len(self.splits.train) < steps * cfg.batch_size:
            raise ConfigError(f"bench: only {len(self.splits.train)} training images for {steps} steps of "
                              f"{cfg.batch_size}")
        self.precision = resolve_precision(cfg)
        self.jit = resolve_jit_compile(cfg)
        keras.utils.set_random_seed(cfg.seed)
        self.gan = build_gan(cfg, self.precision, self.jit)
        gan_fp32 = self.gan if self.precision == "float32" else build_gan(cfg, "float32", self.jit)
        self.reference = ReferenceGAN(cfg)
        self.batch = tf.constant(to_float(self.splits.train[:cfg.batch_size]))
        self.fixed_batches = tf.data.Dataset.from_tensors(self.batch).repeat()  # step-only: no input cost
        self.clock = _step_clock()
        self.fit_overhead: list[float] = []
        self.steppers: dict[str, Callable[[], None]] = {"library_step": self.stepper(self.gan, self.fixed_batches)}
        if gan_fp32 is not self.gan:
            self.steppers["library_step_fp32"] = self.stepper(gan_fp32, self.fixed_batches)
        self.steppers["reference_step"] = self.reference_step
        self.pipeline_batches = max(steps, 100)  # enough batches that the dataset's set-up does not dominate

    def load(self):
        from ..data import load_dataset

        return load_dataset(self.cfg)

    def stepper(self, model: Any, dataset: Any) -> Callable[[], None]:
        """One training step exactly as fit() runs it: train()'s per-step callbacks (the NaN guard reads
        both losses, i.e. waits for the step) around the model's compiled train function, on one iterator
        kept for the whole run (as train() hands fit() one repeated stream)."""
        import keras

        from ..callbacks import DivergenceGuard, StopRequest

        model.make_train_function()
        iterator = iter(self.gan.distribute_strategy.experimental_distribute_dataset(dataset))
        callbacks = keras.callbacks.CallbackList([DivergenceGuard(), StopRequest()], model=model)
        callbacks.on_train_begin()
        callbacks.on_epoch_begin(0)
        counter = iter(range(10**12))

        def step() -> None:
            index = next(counter)
            callbacks.on_train_batch_begin(index)
            logs = model.train_function(iterator)
            callbacks.on_train_batch_end(index, logs)
        return step

    def reference_step(self) -> None:
        float(self.reference.step(self.batch)[1])

    def end_to_end_start(self) -> Callable[[], None]:
        """An epoch's start as in train(): load from the decoded cache, build the stream; returns its stepper."""
        from ..data import epoch_stream

        loaded = self.load()  # a decoded-cache hit, as in every run after the first
        stream = epoch_stream(loaded.train, self.cfg.batch_size, self.steps, seed=self.cfg.seed,
                              mirror=self.cfg.mirror)
        return self.stepper(self.gan, stream)

    def library_fit(self) -> tuple[float, float]:
        """One whole fit() call, timed from the first step's start to the last step's end: fit()'s own set-up
        and its teardown (0.4–1 s: deleting an iterator that a tf.function has used waits on TensorFlow's
        inter-op threads) happen once per train() run, not per step or epoch."""
        from ..callbacks import DivergenceGuard, StopRequest

        wall = time.perf_counter()
        self.gan.fit(self.fixed_batches, epochs=1, steps_per_epoch=self.steps, shuffle=False, verbose=0,
                     callbacks=[DivergenceGuard(), StopRequest(), self.clock])
        clock = self.clock
        self.fit_overhead.append(time.perf_counter() - wall - (clock.end[0] - clock.start[0]))
        return clock.end[0] - clock.start[0], clock.end[1] - clock.start[1]

    def pipeline(self) -> tuple[float, float]:
        from ..data import make_tf_dataset

        def consume() -> None:
            dataset = make_tf_dataset(self.splits.train, self.cfg.batch_size, seed=self.cfg.seed)
            for _ in dataset.repeat().take(self.pipeline_batches):
                pass
        return _timed(consume)

    def warm_up(self) -> float:
        """Trace every path, then run it once more; the seconds this took."""
        _progress(f"{self.decoded_images} PNGs decoded in {self.first_load_s:.1f} s; tracing")
        start = time.perf_counter()
        for function in self.steppers.values():
            function()
            function()
        self.end_to_end_start()()
        self.library_fit()
        self.pipeline()
        return time.perf_counter() - start

    def reference_trains(self) -> bool:
        """The reference must actually train (a do-nothing step would be infinitely fast)."""
        before = self.reference.generator.get_weights()[0].copy()
        self.reference.run(self.batch, 1)
        return not np.allclose(before, self.reference.generator.get_weights()[0])


def _measure_interleaved(paths: _Paths, steps: int, repeats: int) -> dict[str, Any]:
    """Wall and CPU seconds per path and repeat. Training steps are interleaved one step at a time (rotating
    the order), so load changes hit every path alike; fit() and the pipeline run once per repeat."""
    batch_size = paths.cfg.batch_size
    names = [*paths.steppers, "end_to_end", "library_fit", "pipeline"]
    seconds: dict[str, list[float]] = {name: [] for name in names}
    cpu_seconds: dict[str, list[float]] = {name: [] for name in names}
    images = {name: steps * batch_size for name in names}
    images["pipeline"] = paths.pipeline_batches * batch_size
    loads = []
    for repeat in range(repeats):
        steppers = dict(paths.steppers)
        wall, cpu = _timed(lambda: steppers.__setitem__("end_to_end", paths.end_to_end_start()))
        totals = {name: [0.0, 0.0] for name in steppers}
        totals["end_to_end"] = [wall, cpu]  # load from the cache + pipeline set-up count for the epoch
        order = list(steppers)
        for index in range(steps):
            shift = (repeat * steps + index) % len(order)
            for name in order[shift:] + order[:shift]:
                wall, cpu = _timed(steppers[name])
                totals[name][0] += wall
                totals[name][1] += cpu
        for name, (wall, cpu) in totals.items():
            seconds[name].append(wall)
            cpu_seconds[name].append(cpu)
        for name, function in (("library_fit", paths.library_fit), ("pipeline", paths.pipeline)):
            wall, cpu = function()
            seconds[name].append(wall)
            cpu_seconds[name].append(cpu)
        loads.append(round(os.getloadavg()[0], 2))
        _progress(f"repeat {repeat + 1}/{repeats}: " + ", ".join(
            f"{name} {images[name] / seconds[name][-1]:.1f}" for name in names) + " img/s")
    if "library_step_fp32" not in seconds:  # float32 is the resolved precision: the same numbers
        for table in (seconds, cpu_seconds, images):
            table["library_step_fp32"] = table["library_step"]
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "images": images, "loads": loads}


def _summarise(cfg: Config, paths: _Paths, timing: dict[str, Any], steps: int, repeats: int, precision: str,
               folder: Path) -> dict[str, Any]:
    """Rates (wall and CPU), their spreads and the per-repeat ratios, as the JSON object's fields."""
    images = timing["images"]
    rates = {name: [images[name] / s for s in values] for name, values in timing["seconds"].items()}
    cpu_rates = {name: [images[name] / max(s, 1e-9) for s in values] for name, values in timing["cpu_seconds"].items()}

    def ratio(top: str, bottom: str, table: dict[str, list[float]]) -> dict[str, float]:
        return spread([a / b for a, b in zip(table[top], table[bottom])])

    pairs = {
        "library_fp32_over_reference": ("library_step_fp32", "reference_step"),
        "library_over_reference": ("library_step", "reference_step"),
        "library_over_library_fp32": ("library_step", "library_step_fp32"),
        "end_to_end_over_step": ("end_to_end", "library_step"),
    }
    ratios = {key: ratio(top, bottom, rates) for key, (top, bottom) in pairs.items()}
    cpu_ratios = {key: ratio(top, bottom, cpu_rates) for key, (top, bottom) in pairs.items()}
    return {
        "image_size": cfg.image_size, "batch_size": cfg.batch_size, "steps": steps, "repeats": repeats,
        "precision": paths.precision, "precision_requested": precision, "jit_compile": bool(paths.jit),
        "generator": cfg.generator, "g_filters": cfg.g_filters, "d_filters": cfg.d_filters,
        "g_widths": generator_widths(cfg), "d_widths": discriminator_widths(cfg),
        # the timed recipe's keys that differ from the default's (what the bench itself sets aside)
        "config_changes": {key: new for key, (_, new) in default_config().diff(cfg).items() if key not in _BENCH_KEYS},
        **{f"{name}_img_s": spread(values)["median"] for name, values in rates.items()},
        "spreads": {name: spread(values) for name, values in rates.items()},
        "ratios": ratios,
        # the same per CPU-second of this process: insensitive to other processes' load
        **{f"{name}_img_per_cpu_s": spread(values)["median"] for name, values in cpu_rates.items()},
        "cpu_spreads": {name: spread(values) for name, values in cpu_rates.items()},
        "cpu_ratios": cpu_ratios,
        "library_fp32_over_reference": ratios["library_fp32_over_reference"]["median"],
        "library_over_reference": ratios["library_over_reference"]["median"],
        "end_to_end_over_step": ratios["end_to_end_over_step"]["median"],
        "first_load_s": paths.first_load_s,
        "first_load_images": paths.decoded_images,
        "first_load_img_s": paths.decoded_images / paths.first_load_s,
        "fit_call_overhead_s": spread(paths.fit_overhead)["median"],
        "png_folder": str(folder),
        "png_size": max(PNG_SIZE, cfg.image_size),
    }


def format_report(result: dict[str, Any]) -> Iterator[str]:
    """The human-readable table of a :func:`run_benchmark` result."""
    machine = result["machine"]
    size, batch = result["image_size"], result["batch_size"]
    yield (f"dcganlib bench: {size}x{size} px, batch {batch}, {result['steps']} steps x {result['repeats']} "
           f"repeats (interleaved), {result['generator']} G widths {'-'.join(map(str, result['g_widths']))}/D "
           f"{'-'.join(map(str, result['d_widths']))}, library precision {result['precision']}, XLA "
           f"{'on' if result['jit_compile'] else 'off'}")
    if result["config_changes"]:
        yield "recipe: the default with " + ", ".join(f"{k} {v!r}" for k, v in sorted(result["config_changes"].items()))
    cap = machine.get("onednn_max_cpu_isa")  # absent from reports written before it
    yield (f"machine: {machine['cpu_model']}, {machine['logical_cpus']} logical CPUs, bf16 "
           f"{'yes' if machine['cpu_bf16'] else 'no'}{f' (oneDNN capped at {cap})' if cap else ''}, "
           f"{machine['gpus']} GPU, TensorFlow {machine['tensorflow']}; "
           f"load average {machine['load_average_before'][0]} before, {machine['load_average_after'][0]} after")
    yield f"{'path':<46}{'images/s median':>16}   {'min – max':<18}{'IQR':<18}{'img/CPU-s':>10}"
    labels = [("library_step", f"library step ({result['precision']})"),
              ("library_step_fp32", "library step (float32)"),
              ("library_fit", f"library, whole fit() calls ({result['precision']})"),
              ("reference_step", "reference step, TF tutorial (float32)"),
              ("pipeline", "input pipeline (decoded cache -> batches)"),
              ("end_to_end", "end-to-end epoch (load cache + fit)")]
    for key, label in labels:
        s = result["spreads"][key]
        yield (f"{label:<46}{s['median']:>16.1f}   {s['min']:.1f} – {s['max']:.1f}".ljust(83)
               + f"{s['q1']:.1f} – {s['q3']:.1f}".ljust(18) + f"{result['cpu_spreads'][key]['median']:>10.1f}")
    yield "ratios, median of per-repeat ratios (min – max); by wall time, and by this process's CPU time:"
    for key, label, target in (("library_fp32_over_reference", "library float32 / reference", 1.0),
                               ("library_over_reference", f"library {result['precision']} / reference float32", 1.3),
                               ("end_to_end_over_step", "end-to-end / library step", 0.95)):
        r, c = result["ratios"][key], result["cpu_ratios"][key]
        mark = "meets" if r["median"] >= target else "below"
        yield (f"  {label:<44}{r['median']:>6.2f}   ({r['min']:.2f} – {r['max']:.2f})   CPU {c['median']:.2f} "
               f"({c['min']:.2f} – {c['max']:.2f})   [{mark} target {target}]")
    yield (f"first load: decoded {result['first_load_images']} PNGs of {result['png_size']} px in "
           f"{result['first_load_s']:.2f} s ({result['first_load_img_s']:.0f} img/s); "
           f"from the decoded cache {result['cached_load_s']:.3f} s")
    if "best_match_ssim_s" in result:
        n = result["best_match_ssim_count"]
        yield f"best-match SSIM, {n} x {n} images of {SSIM_SIZE}x{SSIM_SIZE}: {result['best_match_ssim_s']:.2f} s"
    if "cache_memory" in result:
        m = result["cache_memory"]
        yield (f"decoded cache of {m['memory_images']} images of {m['memory_image_size']} px (uint8 "
               f"{m['uint8_mb']:.0f} MB): decode peak RSS {m['decode_peak_rss_mb']:.0f} MB "
               f"(+{m['decode_above_start_mb']:.0f} MB = {m['decode_over_uint8']:.2f}x uint8), "
               f"cached load peak {m['cached_peak_rss_mb']:.0f} MB (+{m['cached_above_start_mb']:.0f} MB = "
               f"{m['cached_over_uint8']:.2f}x)")
    yield (f"fit() call overhead outside the steps (set-up + teardown, once per train() run): "
           f"{result['fit_call_overhead_s']:.2f} s")
    yield f"peak RSS of this process: {result['peak_rss_mb']:.0f} MB"


__all__ = ["run_benchmark", "format_report", "ReferenceGAN", "measure_cache_memory", "time_best_match_ssim",
           "bench_png_folder", "spread", "peak_rss_mb", "machine_info"]
