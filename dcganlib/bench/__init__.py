"""Speed benchmark: dcganlib's training step against the TensorFlow-tutorial recipe, the input
pipeline, an end-to-end epoch from PNGs, best-match SSIM and the memory of the decoded cache.

Everything is measured **in one process, interleaved**: within each repeat the training paths take
turns one step at a time (in a rotating order), so a load spike on a shared machine hits all of them
alike; ratios are taken per repeat and their median and min–max are reported. Paths:

* ``library_step``      — :class:`dcganlib.gan.DCGAN` from :func:`~dcganlib.gan.build_gan` at the
  resolved precision, one step exactly as ``fit()`` runs it: ``train()``'s per-step callbacks around the
  model's compiled ``train_function`` on one iterator kept for the run, over one fixed real batch
  repeated (no input cost);
* ``library_step_fp32`` — the same at ``float32`` (the same numbers when the precision is float32);
* ``reference_step``    — the TensorFlow DCGAN tutorial's step (``tf.function``, two GradientTapes,
  ``BinaryCrossentropy(from_logits=True)``, separate Adam optimizers) on the same architecture
  (:mod:`dcganlib.models` builders), the same batch, float32;
* ``end_to_end``        — an epoch as ``train()`` runs it: :func:`dcganlib.data.load_dataset` from the
  decoded cache, ``epoch_stream``, then its ``steps`` steps (interleaved with the
  others) on that stream; the train split is capped at ``steps × batch_size`` images;
* ``library_fit``       — whole ``gan.fit(steps_per_epoch=steps)`` calls (once per repeat), timed from the
  first step's start to the last step's end; ``fit_call_overhead_s`` is the rest of the call (set-up,
  and 0.4–1 s of teardown that ``train()`` pays once per run);
* ``pipeline``          — :func:`dcganlib.data.make_tf_dataset` alone over the decoded uint8 cache
  (gather, cast, scale, prefetch; ≥ 100 batches), no training.

Images/s = images / wall seconds; ``*_img_per_cpu_s`` = images / CPU seconds of this process, which
other processes' load barely moves. Tracing is excluded by warm-up steps. The data is the embedded
demo dataset written as 256×256 PNGs in the OASIS layout (built once under ``<cache>/bench/``); the
first load decodes them into a fresh decoded-image cache (timed), later loads hit that cache.

``memory=True`` additionally decodes ``memory_count`` (10,000) 256×256 PNGs in a child process and
reports its peak RSS (``resource.getrusage(...).ru_maxrss``) above the child's start-up RSS, against
the uint8 size of the images (10,000 × 256 × 256 = 655 MB), once decoding and once from the cache.
"""

from __future__ import annotations

#: Keys of the JSON object that are always present (numbers are positive and finite).
REQUIRED_KEYS = ("library_step_img_s", "library_step_fp32_img_s", "reference_step_img_s", "pipeline_img_s",
                 "end_to_end_img_s", "peak_rss_mb", "precision", "image_size", "batch_size")
#: Side of the bench PNGs: the OASIS course slices are 256×256 (larger image sizes use their own side).
PNG_SIZE = 256
SSIM_SIZE = 64

from .reference import ReferenceGAN  # noqa: E402
from .memory import bench_png_folder, measure_cache_memory, peak_rss_mb, time_best_match_ssim  # noqa: E402
from .timing import format_report, machine_info, run_benchmark, spread  # noqa: E402

__all__ = ["PNG_SIZE", "REQUIRED_KEYS", "ReferenceGAN", "SSIM_SIZE", "bench_png_folder", "format_report",
           "machine_info", "measure_cache_memory", "peak_rss_mb", "run_benchmark", "spread", "time_best_match_ssim"]
