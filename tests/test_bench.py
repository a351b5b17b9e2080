"""The speed benchmark runs and reports sane numbers (no timing asserts: speed lives in `dcganlib bench`),
the reference step really trains, and the GPU choices of the training module hold with mocked devices."""

import json
import math

import numpy as np
import pytest
import tensorflow as tf

from dcganlib import bench, gan, hardware
from dcganlib.config import smoke_config
from dcganlib.errors import ConfigError
from helpers import BFLOAT16_CRASH, error_line, main

def _numbers(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    if hardware.bfloat16_would_crash():
        pytest.skip(BFLOAT16_CRASH)
    lines = []
    out = bench.run_benchmark(image_size=16, batch_size=4, steps=2, precision="mixed_bfloat16", as_json=True,
                              repeats=2, ssim_count=8, config=smoke_config(),
                              png_root=tmp_path_factory.mktemp("bench_pngs"), output=lines.append)
    return out, lines


@pytest.mark.slow  # the bench trains four small GANs (~10 s)
def test_json_is_one_object_with_every_key_positive_and_finite(result):
    out, lines = result
    assert len(lines) == 1
    parsed = json.loads(lines[0])
    assert parsed == json.loads(json.dumps(out))
    for key in bench.REQUIRED_KEYS:
        assert key in parsed, key
    for key in ("library_step_img_s", "library_step_fp32_img_s", "reference_step_img_s", "pipeline_img_s",
                "end_to_end_img_s", "library_fit_img_s", "library_step_img_per_cpu_s", "peak_rss_mb", "first_load_s", "cached_load_s", "best_match_ssim_s",
                "library_over_reference", "library_fp32_over_reference", "end_to_end_over_step"):
        assert math.isfinite(parsed[key]) and parsed[key] > 0, key
    assert parsed["precision"] == "mixed_bfloat16" and parsed["image_size"] == 16 and parsed["batch_size"] == 4
    smoke = smoke_config()  # the networks timed are the ones the config asked for
    assert (parsed["generator"], parsed["g_filters"], parsed["d_filters"]) == (smoke.generator, smoke.g_filters,
                                                                               smoke.d_filters)
    # Every rate and ratio carries its spread over the two interleaved repeats.
    for name in ("library_step", "library_step_fp32", "reference_step", "pipeline", "end_to_end", "library_fit"):
        s = parsed["spreads"][name]
        assert s["n"] == 2 and 0 < s["min"] <= s["q1"] <= s["median"] <= s["q3"] <= s["max"]
        assert s["median"] == parsed[f"{name}_img_s"]
    assert set(parsed["ratios"]) == {"library_fp32_over_reference", "library_over_reference",
                                     "library_over_library_fp32", "end_to_end_over_step"}
    assert all(math.isfinite(x) for x in _numbers(parsed["spreads"]))
    assert set(parsed["cpu_ratios"]) == set(parsed["ratios"]) and parsed["fit_call_overhead_s"] >= 0
    assert len(parsed["machine"]["load_average_before"]) == 3 and parsed["machine"]["logical_cpus"] >= 1
    assert parsed["reference_trains"] is True
    # the recipe timed: its keys that differ from the default's, not those the bench sets itself
    assert parsed["config_changes"]["g_filters"] == 16 and parsed["config_changes"]["penalty_every"] == 1
    assert not {"image_size", "batch_size", "precision", "data", "seed"} & set(parsed["config_changes"])
    # The demo PNGs are decoded once: the first load saw every file of the OASIS-layout folder.
    assert parsed["first_load_images"] >= 2 * 4


def test_text_report_names_every_path_and_ratio(result):
    out, _ = result
    text = "\n".join(bench.format_report(out))
    for label in ("library step", "reference step", "input pipeline", "end-to-end", "library float32 / reference",
                  "end-to-end / library step", "first load", "peak RSS", "G widths 32-16/D 16-32", "best-match SSIM",
                  "recipe: the default with", "g_filters 16"):
        assert label in text, label
    without_ssim = {k: v for k, v in out.items() if not k.startswith("best_match_ssim")}
    assert "best-match SSIM" not in "\n".join(bench.format_report(without_ssim))  # ssim_count=0 skips it


def test_reference_step_trains_both_networks():
    config = smoke_config(image_size=16)
    reference = bench.ReferenceGAN(config)
    images = tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 1)).astype(np.float32))
    g_before = [w.copy() for w in reference.generator.get_weights()]
    d_before = [w.copy() for w in reference.discriminator.get_weights()]
    g_loss, d_loss = reference.run(images, 2)
    assert math.isfinite(g_loss) and math.isfinite(d_loss) and g_loss > 0 and d_loss > 0
    changed = lambda before, after: sum(not np.allclose(a, b) for a, b in zip(before, after))
    assert changed(g_before, reference.generator.get_weights()) >= len(g_before) // 2
    assert changed(d_before, reference.discriminator.get_weights()) >= len(d_before) // 2
    assert reference.g_optimizer.iterations.numpy() == 2 and reference.d_optimizer.iterations.numpy() == 2


def test_spread_statistics():
    s = bench.spread([4.0, 1.0, 3.0, 2.0])
    assert s == {"median": 2.5, "min": 1.0, "max": 4.0, "q1": 1.75, "q3": 3.25, "n": 4}


def test_bench_rejects_bad_arguments():
    from dcganlib.errors import ConfigError

    with pytest.raises(ConfigError, match="--steps"):
        bench.run_benchmark(steps=0)
    with pytest.raises(ConfigError):
        bench.run_benchmark(image_size=65)


# ---- GPU choices, with mocked device lists ------------------------------------------------------
@pytest.fixture
def two_fake_gpus(monkeypatch):
    class Device:
        def __init__(self, name, device_type):
            self.name, self.device_type = name, device_type

    physical = {"GPU": [Device("/physical_device:GPU:0", "GPU"), Device("/physical_device:GPU:1", "GPU")]}
    logical = {"GPU": [Device("/device:GPU:0", "GPU"), Device("/device:GPU:1", "GPU")]}
    real_physical, real_logical = tf.config.list_physical_devices, tf.config.list_logical_devices
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: physical[kind] if kind == "GPU" else real_physical(kind))
    monkeypatch.setattr(tf.config, "list_logical_devices",
                        lambda kind=None: logical[kind] if kind == "GPU" else real_logical(kind))
    mirrored = []
    monkeypatch.setattr(hardware, "_mirrored", lambda devices: mirrored.append(devices) or "mirrored-strategy")
    return mirrored


def test_auto_on_gpus_picks_float16_loss_scaling_xla_and_mirrored_over_all_gpus(two_fake_gpus):
    config = smoke_config(precision="auto", jit_compile=None, strategy="auto")
    assert hardware.resolve_precision(config) == "mixed_float16"
    assert hardware.resolve_jit_compile(config) is True
    assert hardware.resolve_strategy(config) == "mirrored-strategy"
    assert two_fake_gpus == [("/device:GPU:0", "/device:GPU:1")]
    g_optimizer, d_optimizer = gan.make_optimizers(config, "mixed_float16")
    assert all(isinstance(o, __import__("keras").optimizers.LossScaleOptimizer) for o in (g_optimizer, d_optimizer))


def test_auto_on_cpu_never_picks_float16(monkeypatch):
    config = smoke_config(precision="auto")
    monkeypatch.setattr(hardware, "cpu_supports_bf16", lambda: True)
    assert hardware.resolve_precision(config) == "mixed_bfloat16"
    monkeypatch.setattr(hardware, "cpu_supports_bf16", lambda: False)
    assert hardware.resolve_precision(config) == "float32"
    assert hardware.resolve_strategy(config.replace(strategy="auto")).num_replicas_in_sync == 1


def test_a_onednn_cap_below_bf16_makes_auto_pick_float32_and_is_recorded(monkeypatch):
    """``ONEDNN_MAX_CPU_ISA=AVX2`` runs a bf16 CPU as an AVX2-only one would: bf16 would be emulated there."""
    from dcganlib import manifest

    config = smoke_config(precision="auto")
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "fma", "avx512f", "avx512_bf16"})
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert hardware.onednn_isa_cap() is None and manifest.cpu_record()["onednn_max_cpu_isa"] is None
    assert hardware.resolve_precision(config) == "mixed_bfloat16"
    for cap, bf16 in (("avx2", False), ("AVX512_CORE", False), ("AVX512_CORE_VNNI", False), (" AVX2_VNNI ", False),
                      ("AVX512_CORE_BF16", True), ("AVX512_CORE_AMX", True), ("ALL", True), ("", True)):
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
        assert hardware.cpu_supports_bf16() is bf16, cap
        assert hardware.resolve_precision(config) == ("mixed_bfloat16" if bf16 else "float32"), cap
        assert manifest.cpu_record()["onednn_max_cpu_isa"] == (cap.strip().upper() or None), cap
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "fma"})
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "ALL")  # a cap cannot add what the CPU lacks
    assert hardware.resolve_precision(config) == "float32"


def test_bfloat16_where_tensorflow_would_crash_is_refused_in_one_line_before_any_work(monkeypatch, tmp_path, capsys):
    """Below AVX-512 on a CPU with bf16 units TensorFlow segfaults on bfloat16 (measured with ONEDNN_MAX_CPU_ISA
    AVX2, AVX2_VNNI, AVX2_VNNI_2, AVX and SSE41; AVX512_CORE and AVX512_CORE_VNNI run it): refused, not run."""
    bf16 = smoke_config(precision="mixed_bfloat16")
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    for cap, crashes in (("AVX2", True), ("sse41", True), ("AVX2_VNNI_2", True), ("AVX512_CORE", False),
                         ("AVX512_CORE_BF16", False), ("", False)):
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
        assert hardware.bfloat16_would_crash() is crashes, cap
        if crashes:
            with pytest.raises(ConfigError, match=f"ONEDNN_MAX_CPU_ISA={cap.upper()}"):
                hardware.resolve_precision(bf16)
        else:
            assert hardware.resolve_precision(bf16) == "mixed_bfloat16", cap
        assert hardware.resolve_precision(smoke_config(precision="float32")) == "float32"
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "fma"})  # no bf16 units: bf16 runs (slowly)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert not hardware.bfloat16_would_crash() and hardware.resolve_precision(bf16) == "mixed_bfloat16"
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    (tmp_path / "bf16.json").write_text(json.dumps({"precision": "mixed_bfloat16"}))
    code, stderr = main("train", "--config", tmp_path / "bf16.json", "--out", tmp_path / "run", capsys=capsys)
    assert code == 2 and "precision mixed_bfloat16 with ONEDNN_MAX_CPU_ISA=AVX2" in error_line(stderr)
    assert not (tmp_path / "run").exists()  # refused before the run folder or the data were touched
