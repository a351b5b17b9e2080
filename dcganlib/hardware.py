"""What the hardware decides: numeric precision, distribution strategy, XLA, and the dtype-policy scope.

``precision: auto`` picks ``mixed_float16`` (with loss scaling) on a GPU, ``mixed_bfloat16`` on a CPU
with native bf16 units (AVX512_BF16 or AMX-BF16) that oneDNN may use (``ONEDNN_MAX_CPU_ISA`` can forbid
them, e.g. ``AVX2`` to run as an AVX2-only CPU would) and ``float32`` elsewhere; ``strategy: auto`` mirrors
over several GPUs; ``jit_compile: null`` turns XLA on for GPUs only. Why each choice, with the
measurements behind it: README, "What the library chooses, and why".
"""

from __future__ import annotations

import contextlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Optional

import keras
import tensorflow as tf

from .config import Config
from .errors import ConfigError

# XLA on the CPU: measured slower for this step on both CPUs this project ran on (README, Performance:
# an AVX2-only VM and an AVX512_BF16 one), so it stays off there unless the config asks for it.
_JIT_COMPILE_ON_CPU = False


#: The environment variable that caps the instruction set oneDNN (TensorFlow's CPU kernels) dispatches to.
ONEDNN_ISA_VARIABLE = "ONEDNN_MAX_CPU_ISA"
#: Its values whose instruction sets have no bf16 arithmetic (oneDNN's ISA names, from SSE4.1 to AVX-512 with
#: VNNI): under these caps bf16 would be emulated, about 10x slower than float32 (docs/performance.md).
ISA_CAPS_WITHOUT_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")
#: The caps below AVX-512 under which TensorFlow 2.21 crashes (a segmentation fault) on its first bfloat16 matrix
#: product on a CPU that has bf16 units: TensorFlow sends bf16 to oneDNN because the CPU has the instructions,
#: and oneDNN, held below AVX-512, has no kernel for it. On a CPU without bf16 units bf16 runs, slowly.
ISA_CAPS_THAT_CRASH_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2")


def onednn_isa_cap() -> Optional[str]:
    """The ``ONEDNN_MAX_CPU_ISA`` cap in upper case, or None when it is not set (or empty)."""
    value = os.environ.get(ONEDNN_ISA_VARIABLE, "").strip().upper()
    return value or None


def cpu_flags() -> set[str]:
    """The CPU feature flags from ``/proc/cpuinfo`` (empty when not on Linux: nothing can be assumed)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def available_memory_bytes() -> Optional[int]:
    """Bytes of memory this process can still take: ``MemAvailable`` of ``/proc/meminfo``, capped by the
    cgroup v2 limit a cluster job or container runs under (``memory.max`` − ``memory.current``); None
    when the system says neither (not Linux)."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def cpu_model() -> str:
    """The CPU's ``model name`` from ``/proc/cpuinfo``, or ``"unknown"`` (not Linux, or not listed)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


#: The ``/proc/cpuinfo`` flags of native bfloat16 arithmetic.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_supports_bf16() -> bool:
    """True if the CPU has native bfloat16 arithmetic (:data:`BF16_FLAGS`) and oneDNN may use it: no
    ``ONEDNN_MAX_CPU_ISA`` cap of :data:`ISA_CAPS_WITHOUT_BF16`."""
    return bool(cpu_flags() & BF16_FLAGS) and onednn_isa_cap() not in ISA_CAPS_WITHOUT_BF16


def bfloat16_would_crash() -> bool:
    """True where TensorFlow crashes on bfloat16 products: a CPU with :data:`BF16_FLAGS` under an
    ``ONEDNN_MAX_CPU_ISA`` cap of :data:`ISA_CAPS_THAT_CRASH_BF16`."""
    return bool(cpu_flags() & BF16_FLAGS) and onednn_isa_cap() in ISA_CAPS_THAT_CRASH_BF16


def resolve_precision(config: Config) -> str:
    """The Keras dtype policy name for ``config.precision``.

    ``"auto"``: ``mixed_float16`` when a GPU is visible (loss scaling is applied by the train step);
    ``mixed_bfloat16`` on a CPU with native bf16 (AVX512_BF16 / AMX) that oneDNN may use
    (:func:`cpu_supports_bf16`); otherwise ``float32``.
    Explicit names are returned unchanged, except that ``mixed_bfloat16`` on the CPU of a bf16 machine under
    one of :data:`ISA_CAPS_THAT_CRASH_BF16` is refused (:class:`ConfigError`; :func:`bfloat16_would_crash`).
    """
    if config.precision == "mixed_bfloat16" and bfloat16_would_crash():
        raise ConfigError(f"precision mixed_bfloat16 with {ONEDNN_ISA_VARIABLE}={onednn_isa_cap()}: on this CPU, whose "
                          "bf16 units that cap hides from oneDNN, TensorFlow crashes on the first bfloat16 product; "
                          f"use precision float32 (or auto), or unset {ONEDNN_ISA_VARIABLE}")
    if config.precision != "auto":
        return config.precision
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    if cpu_supports_bf16():
        return "mixed_bfloat16"
    return "float32"


def resolve_strategy(config: Config) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy for ``config.strategy``.

    * ``"auto"``: ``MirroredStrategy`` over all GPUs when more than one is visible, else the default
      one-device strategy;
    * ``"default"``: the default strategy;
    * ``"mirrored"``: ``MirroredStrategy`` over every GPU, or, without GPUs, over every logical CPU device
      (which is how the tests exercise the multi-replica path);
    * ``"multi_worker"``: ``MultiWorkerMirroredStrategy``, configured by the ``TF_CONFIG`` environment
      variable (one process per machine, the same command on each).
    """
    if config.strategy == "multi_worker":  # first: listing the devices would start TensorFlow's runtime
        return _multi_worker()
    gpus = tuple(d.name for d in tf.config.list_logical_devices("GPU"))
    if config.strategy == "auto":
        return _mirrored(gpus) if len(gpus) > 1 else tf.distribute.get_strategy()
    if config.strategy == "default":
        return tf.distribute.get_strategy()
    if config.strategy == "mirrored":
        return _mirrored(gpus or tuple(d.name for d in tf.config.list_logical_devices("CPU")))
    raise ConfigError(f"config key 'strategy' must be auto, default, mirrored or multi_worker; "
                      f"got {config.strategy!r}")


# One strategy object per device set and process: a second MirroredStrategy over the same devices
# reuses collective-op instance keys and aborts with "Shape mismatch in the collective instance"
# (e.g. a notebook calling train() twice).
@lru_cache(maxsize=None)
def _mirrored(devices: tuple[str, ...]) -> tf.distribute.Strategy:
    return tf.distribute.MirroredStrategy(list(devices))


@lru_cache(maxsize=None)
def _multi_worker() -> tf.distribute.Strategy:
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as exc:
        if "must be configured at program startup" not in str(exc):
            raise
        raise ConfigError("strategy multi_worker must be set up before TensorFlow runs anything in the process "
                          "(it configures the process's collective ops): start each worker with "
                          "'python -m dcganlib train', not from a notebook or a script that already used "
                          "TensorFlow") from None


def resolve_jit_compile(config: Config) -> bool:
    """``config.jit_compile``, or when None: XLA on a GPU, off on a CPU (measured slower there)."""
    if config.jit_compile is not None:
        return config.jit_compile
    if tf.config.list_physical_devices("GPU"):
        return True
    return _JIT_COMPILE_ON_CPU


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Set the global Keras dtype policy to ``name`` (layers read it when created); restore it on exit."""
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(previous)


__all__ = ["ONEDNN_ISA_VARIABLE", "ISA_CAPS_WITHOUT_BF16", "ISA_CAPS_THAT_CRASH_BF16", "BF16_FLAGS", "onednn_isa_cap",
           "bfloat16_would_crash",
           "cpu_flags", "cpu_model", "available_memory_bytes", "cpu_supports_bf16", "resolve_precision",
           "resolve_strategy", "resolve_jit_compile", "dtype_policy"]
