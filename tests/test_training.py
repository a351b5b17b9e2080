"""Training: the train step, the run folder, checkpoints and resume, sampling, the strategy path.

Everything runs on 32 px images and the smoke widths; the artefact tests read the session's shared
finished run (conftest ``finished_run``). Refusals of bad settings and folders are tested from the
command line (test_cli), kills, signals and divergence in test_faults.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from dcganlib import gan as gan_module, hardware, runs, sampling, training  # noqa: E402
from dcganlib.config import Config, default_config, smoke_config  # noqa: E402
from dcganlib.errors import ConfigError, RunFolderError  # noqa: E402
from dcganlib.losses import bce_discriminator_loss, bce_generator_loss  # noqa: E402
from helpers import BFLOAT16_CRASH, tiny_config  # noqa: E402

SIZE = 32


@pytest.fixture(scope="module")
def run(finished_run):
    """The shared finished 2-epoch run (read-only)."""
    return finished_run


@pytest.fixture(scope="module")
def slices(finished_run) -> Path:
    """The data folder the shared run was trained on."""
    return Path(Config.from_json(finished_run.run_dir / runs.CONFIG_FILE).data)


def weights(model) -> list[np.ndarray]:
    return [v.numpy().copy() for v in model.weights]


# ------------------------------------------------------------------------------------------------
# the train step
def test_train_step_changes_both_networks_and_gives_finite_losses():
    gan = gan_module.build_gan(smoke_config())
    real = tf.constant(np.random.default_rng(0).uniform(-1, 1, (8, 32, 32, 1)).astype("float32"))
    g_before = [v.numpy().copy() for v in gan.generator.trainable_variables]
    d_before = [v.numpy().copy() for v in gan.discriminator.trainable_variables]
    logs = gan.train_step(real)
    assert set(logs) == set(gan_module.METRIC_NAMES)
    assert all(np.isfinite(float(v)) for v in logs.values())
    for before, variable in zip(g_before, gan.generator.trainable_variables):
        assert not np.array_equal(before, variable.numpy()), variable.path
    for before, variable in zip(d_before, gan.discriminator.trainable_variables):
        assert not np.array_equal(before, variable.numpy()), variable.path
    assert int(gan.g_optimizer.iterations.numpy()) == 1 and int(gan.d_optimizer.iterations.numpy()) == 1


class FixedNoiseGAN(gan_module.DCGAN):
    """z taken from the first latent_dim pixels of each real image: a known z that splits with the batch."""

    def sample_noise(self, batch_size):
        return tf.reshape(tf.cast(self._real, tf.float32), (batch_size, -1))[:, : self.latent_dim] * 2.0

    def step(self, data, penalty_due):
        self._real = data
        return super().step(data, penalty_due)


def fixed_noise_gan(config, optimizer_factory=None) -> FixedNoiseGAN:
    from dcganlib import losses, models

    gan = FixedNoiseGAN(models.build_generator(config), models.build_discriminator(config),
                        loss_pair=losses.get_loss_pair(config), latent_dim=config.latent_dim, seed=config.seed)
    make = optimizer_factory or (lambda: keras.optimizers.Adam(2e-4, beta_1=0.5))
    gan.compile(make(), make())
    return gan


def test_train_step_reports_losses_and_accuracies_of_the_pre_update_networks():
    config = smoke_config()
    gan = fixed_noise_gan(config)
    real = tf.constant(np.random.default_rng(1).uniform(-1, 1, (8, 32, 32, 1)).astype("float32"))
    z = tf.reshape(real, (8, -1))[:, : config.latent_dim] * 2.0
    # training=True: batch statistics, exactly what the step computes before it updates anything
    real_logits = gan.discriminator(real, training=True)
    fake_logits = gan.discriminator(gan.generator(z, training=True), training=True)
    logs = {k: float(v) for k, v in gan.train_step(real).items()}
    r, f = real_logits.numpy().ravel(), fake_logits.numpy().ravel()
    np.testing.assert_allclose(logs["d_loss"], float(bce_discriminator_loss(real_logits, fake_logits)), rtol=1e-5)
    np.testing.assert_allclose(logs["g_loss"], float(bce_generator_loss(fake_logits)), rtol=1e-5)
    assert logs["d_acc_real"] == pytest.approx(np.mean(r > 0))
    assert logs["d_acc_fake"] == pytest.approx(np.mean(f < 0))
    np.testing.assert_allclose(logs["d_real"], np.mean(1 / (1 + np.exp(-r))), rtol=1e-5)
    np.testing.assert_allclose(logs["d_fake"], np.mean(1 / (1 + np.exp(-f))), rtol=1e-5)


def test_fixed_noise_is_a_function_of_the_seed():
    config = smoke_config(seed=5)
    a, b = sampling.fixed_noise(config), sampling.fixed_noise(config)
    assert a.shape == (config.grid_size, config.latent_dim) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, sampling.fixed_noise(smoke_config(seed=6)))


def test_resolve_choices_follow_the_config():
    if hardware.bfloat16_would_crash():  # under an ONEDNN_MAX_CPU_ISA cap that would crash it: refused
        with pytest.raises(ConfigError, match="ONEDNN_MAX_CPU_ISA"):
            hardware.resolve_precision(smoke_config(precision="mixed_bfloat16"))
    else:
        assert hardware.resolve_precision(smoke_config(precision="mixed_bfloat16")) == "mixed_bfloat16"
    auto = hardware.resolve_precision(smoke_config(precision="auto"))
    assert auto == ("mixed_bfloat16" if hardware.cpu_supports_bf16() else "float32")  # no GPU in tests
    assert hardware.resolve_jit_compile(smoke_config(jit_compile=True)) is True
    assert training.resolve_verbose(smoke_config(verbose=None)) == (1 if sys.stdout.isatty() else 2)
    assert hardware.resolve_strategy(smoke_config(strategy="auto")).num_replicas_in_sync == 1


def test_mixed_float16_wraps_optimizers_in_loss_scaling():
    g_opt, d_opt = gan_module.make_optimizers(smoke_config(), "mixed_float16")
    assert isinstance(g_opt, keras.optimizers.LossScaleOptimizer)
    assert isinstance(d_opt, keras.optimizers.LossScaleOptimizer)
    plain, _ = gan_module.make_optimizers(smoke_config(g_learning_rate=1e-3), "mixed_bfloat16")
    assert isinstance(plain, keras.optimizers.Adam) and float(plain.learning_rate) == pytest.approx(1e-3)


# ------------------------------------------------------------------------------------------------
# a finished run
def test_run_writes_every_artefact(run, slices):
    run_dir = run.run_dir
    assert run.epochs_completed == 2
    for name in ("config.json", "split.json", "history.csv", "training.gif", "generator.keras", "train.lock"):
        assert (run_dir / name).is_file(), name
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["data"] == str(slices) and saved["epochs"] == 2
    assert json.loads((run_dir / "split.json").read_text())  # the data audit, non-empty
    grids = sorted(p.name for p in (run_dir / "grids").iterdir())
    assert grids == ["epoch_0001.png", "epoch_0002.png"]
    grid = np.asarray(Image.open(run_dir / "grids" / "epoch_0001.png"))
    assert grid.dtype == np.uint8 and grid.shape[1] == 4 * SIZE  # 16 images as 4 x 4, label strip on top
    assert runs.latest_checkpoint(run_dir).endswith("ckpt-2")
    with Image.open(run_dir / "training.gif") as gif:
        assert gif.n_frames == 2


def test_history_has_one_row_per_epoch_with_every_metric(run):
    rows = runs.read_history(run.run_dir / "history.csv")
    assert [r["epoch"] for r in rows] == [1, 2]
    header = (run.run_dir / "history.csv").read_text().splitlines()[0].split(",")
    assert header[:2] == ["epoch", "seconds"] and set(gan_module.METRIC_NAMES) <= set(header)
    assert {"ssim_best_match", "ssim_diversity"} <= set(header)  # from the evaluation module's tracker
    for row in rows:
        assert all(np.isfinite(row[k]) for k in gan_module.METRIC_NAMES)
        assert -1.0 <= row["ssim_best_match"] <= 1.0 and -1.0 <= row["ssim_diversity"] <= 1.0
        assert 0.0 <= row["d_acc_real"] <= 1.0 and 0.0 < row["d_fake"] < 1.0
    assert rows == run.history


def test_the_grid_shows_the_same_noise_every_epoch(run):
    # Regenerate epoch 2's grid from epoch 2's generator and the config's fixed noise: identical pixels.
    path = run.run_dir / "regenerated.png"
    try:
        sampling.save_grid_of(sampling.load_generator(run.run_dir, epoch=2), sampling.fixed_noise(tiny_config(Path("x"))), path, label="epoch 2")
        np.testing.assert_array_equal(np.asarray(Image.open(path)),
                                      np.asarray(Image.open(run.run_dir / "grids" / "epoch_0002.png")))
    finally:
        path.unlink(missing_ok=True)


def test_saved_generator_reproduces_the_trained_one(run):
    z = np.random.default_rng(0).standard_normal((6, 32)).astype("float32")
    loaded = sampling.load_generator(run.run_dir)
    np.testing.assert_array_equal(loaded(z, training=False).numpy(), run.generator(z, training=False).numpy())


def test_checkpoint_fallback_when_generator_file_is_missing(run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run.run_dir, copy)
    (copy / "generator.keras").unlink()
    z = np.random.default_rng(1).standard_normal((4, 32)).astype("float32")
    np.testing.assert_array_equal(sampling.load_generator(copy)(z, training=False).numpy(),
                                  run.generator(z, training=False).numpy())


def test_generate_writes_uint8_pngs_and_a_grid(run, tmp_path):
    paths = sampling.generate(run.run_dir, count=5, out_dir=tmp_path / "gen", seed=1, grid=True)
    assert [p.name for p in paths] == [f"generated_{i:04d}.png" for i in range(5)]
    first = np.asarray(Image.open(paths[0]))
    assert first.dtype == np.uint8 and first.shape == (SIZE, SIZE)
    expected = sampling.sample(run.generator, 5, seed=1)
    np.testing.assert_array_equal(first, np.clip(np.rint((expected[0, ..., 0] + 1) * 127.5), 0, 255))
    assert (tmp_path / "gen" / "grid.png").is_file()


# ------------------------------------------------------------------------------------------------
# resume
def test_resume_continues_at_the_next_epoch_and_matches_an_uninterrupted_run(slices, tmp_path):
    # The default's lazy R1 (every 4th step; 2 steps per epoch): the resumed epoch 3 starts on a penalised
    # step, which it must find from the restored step counter.
    lazy = dict(penalty_every=default_config().penalty_every)
    run = training.train(tiny_config(slices, **lazy), tmp_path / "first")
    resumed = tmp_path / "resumed"
    shutil.copytree(run.run_dir, resumed)
    result = training.train(tiny_config(slices, epochs=3, **lazy), resumed, resume=True)
    assert result.epochs_completed == 3
    rows = runs.read_history(resumed / "history.csv")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[:2] == runs.read_history(run.run_dir / "history.csv")  # old rows kept verbatim
    assert sorted(p.name for p in (resumed / "grids").iterdir())[-1] == "epoch_0003.png"
    assert json.loads((resumed / "config.json").read_text())["epochs"] == 3

    training.train(tiny_config(slices, epochs=3, **lazy), tmp_path / "straight")
    straight_rows = runs.read_history(tmp_path / "straight" / "history.csv")
    # Same data order, same noise, same optimizer state, deterministic CPU kernels: the same numbers,
    # bit for bit (the metrics and both networks' weights, batch-norm statistics included).
    for a, b in zip(rows, straight_rows):
        assert {k: a[k] for k in gan_module.METRIC_NAMES} == {k: b[k] for k in gan_module.METRIC_NAMES}
    resumed_ckpt, straight_ckpt = runs.latest_checkpoint(resumed), runs.latest_checkpoint(tmp_path / "straight")
    assert resumed_ckpt.endswith("ckpt-3") and straight_ckpt.endswith("ckpt-3")
    for name, _ in tf.train.list_variables(straight_ckpt):
        if name.startswith(("generator/", "discriminator/", "g_optimizer/", "d_optimizer/", "noise_seed")):
            np.testing.assert_array_equal(tf.train.load_variable(resumed_ckpt, name),
                                          tf.train.load_variable(straight_ckpt, name), err_msg=name)


def test_resume_of_a_finished_run_does_nothing(run, slices, tmp_path, capsys):
    copy = tmp_path / "done"
    shutil.copytree(run.run_dir, copy)
    before = (copy / "history.csv").read_text()
    result = training.train(tiny_config(slices, epochs=2), copy, resume=True)
    assert result.epochs_completed == 2
    assert "already trained 2 epochs" in capsys.readouterr().err  # a message: stderr
    assert (copy / "history.csv").read_text() == before


def test_resume_without_checkpoint_or_run(slices, tmp_path):
    with pytest.raises(RunFolderError, match="nothing to resume"):
        training.train(tiny_config(slices), tmp_path / "absent", resume=True)
    folder = tmp_path / "no_ckpt"
    folder.mkdir()
    tiny_config(slices).to_json(folder / "config.json")
    with pytest.raises(RunFolderError, match="no checkpoint"):
        training.train(tiny_config(slices), folder, resume=True)


# ------------------------------------------------------------------------------------------------
# two replicas on two logical CPU devices (a fresh process: devices must be set before TF starts)
STRATEGY_SCRIPT = r"""
import sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
sys.path.insert(0, sys.argv[1])
from test_training import fixed_noise_gan
from helpers import skip_graph_rewrites, tiny_config, write_slices
skip_graph_rewrites()
from pathlib import Path
from dcganlib import gan as gan_module, hardware, runs, training
from dcganlib.config import default_config, smoke_config

config = smoke_config()
real = np.random.default_rng(0).uniform(-1, 1, (8, 32, 32, 1)).astype("float32")
sgd = lambda: keras.optimizers.SGD(learning_rate=1.0)

def update(gan, batch, strategy=None):
    before = [v.numpy().copy() for v in gan.generator.trainable_variables + gan.discriminator.trainable_variables]
    if strategy is None:
        gan.train_step(tf.constant(batch))
    else:
        dataset = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(batch))
        strategy.run(gan.train_step, args=(next(iter(dataset)),))
    after = [v.numpy() for v in gan.generator.trainable_variables + gan.discriminator.trainable_variables]
    return [a - b for a, b in zip(after, before)]   # = -gradient with SGD(1)

# Built under two replicas, the batch norms are synchronised (global-batch statistics), so 2 replicas
# on a batch of 8 make the update one device makes on the whole batch of 8.
expected = update(fixed_noise_gan(config, sgd), real)
strategy = hardware.resolve_strategy(config.replace(strategy="mirrored"))
assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
with strategy.scope():
    gan = fixed_noise_gan(config, sgd)
got = update(gan, real, strategy)
worst = max(float(np.max(np.abs(g - e)) / (np.max(np.abs(e)) + 1e-12)) for g, e in zip(got, expected))
print("max relative gradient difference", worst)
assert worst < 1e-4, worst
doubled = max(float(np.max(np.abs(g - 2 * e))) for g, e in zip(got, expected))
assert doubled > 1e-6  # the check can see a missing 1/replicas scaling

halves = [update(fixed_noise_gan(config, sgd), real[i:i + 4]) for i in (0, 4)]  # per-replica batch norms
unsynchronised = max(float(np.max(np.abs((a + b) / 2 - e))) for a, b, e in zip(*halves, expected))
assert unsynchronised > 1e-4, unsynchronised  # the check can see per-replica statistics

# the noise: each replica takes its rows of the global batch's draw, the draw of one device
with strategy.scope():
    plain = gan_module.build_gan(config)
one = gan_module.build_gan(config)
def draw():
    return plain.sample_noise(4)
z = strategy.experimental_local_results(strategy.run(draw))
assert not np.allclose(z[0].numpy(), z[1].numpy())
np.testing.assert_array_equal(np.concatenate([z[0].numpy(), z[1].numpy()]), one.sample_noise(8).numpy())

# fit() through train(): one epoch on two replicas, checkpoint and all
out = Path(sys.argv[2])
# the default's lazy R1 (two compiled steps, picked per step), which tf.cond could not do under a strategy
result = training.train(tiny_config(write_slices(out / "data"), strategy="mirrored", epochs=1,
                                    penalty_every=default_config().penalty_every), out / "run")
rows = runs.read_history(out / "run" / "history.csv")
assert [r["epoch"] for r in rows] == [1] and np.isfinite(rows[0]["d_loss"]), rows
assert runs.latest_checkpoint(out / "run").endswith("ckpt-1")
print("OK")
"""


def test_two_replicas_match_single_device_gradients_and_train(tmp_path):
    script = tmp_path / "strategy_check.py"
    script.write_text(STRATEGY_SCRIPT)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, str(script), str(Path(__file__).parent), str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=900)  # generous: CI machines are shared
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert done.stdout.strip().endswith("OK")


# ------------------------------------------------------------------------------------------------
# EMA of the generator's weights
def test_ema_generator_holds_the_moving_average_of_the_raw_weights():
    decay = 0.75
    gan = gan_module.build_gan(smoke_config(ema=decay, ema_rampup=0.0))  # no warm-up: the plain average
    assert gan.g_optimizer.use_ema and not gan.d_optimizer.use_ema
    rng = np.random.default_rng(2)
    expected = None
    for _ in range(3):
        gan.train_step(tf.constant(rng.uniform(-1, 1, (8, 32, 32, 1)).astype("float32")))
        raw = [v.numpy().copy() for v in gan.generator.trainable_variables]
        # Keras starts the average at the first step's weights, then w̄ ← d·w̄ + (1−d)·w
        expected = raw if expected is None else [decay * e + (1 - decay) * w for e, w in zip(expected, raw)]
    sampler = gan.sampling_generator()
    assert sampler is not gan.generator
    for want, got in zip(expected, sampler.trainable_variables):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-7)
    assert not np.array_equal(sampler.trainable_variables[0].numpy(), raw[0])  # really averaged
    for source, copy in zip(gan.generator.non_trainable_variables, sampler.non_trainable_variables):
        np.testing.assert_array_equal(copy.numpy(), source.numpy())  # batch-norm statistics copied


def test_ema_run_exports_and_reloads_the_averaged_generator(slices, tmp_path):
    result = training.train(tiny_config(slices, epochs=1, ema=0.9, track_ssim=False), tmp_path / "ema")
    z = np.random.default_rng(3).standard_normal((4, 32)).astype("float32")
    want = result.generator(z, training=False).numpy()
    np.testing.assert_array_equal(sampling.load_generator(result.run_dir)(z, training=False).numpy(), want)
    (result.run_dir / "generator.keras").unlink()  # the checkpoint fallback must rebuild the average too
    np.testing.assert_allclose(sampling.load_generator(result.run_dir)(z, training=False).numpy(), want,
                               rtol=1e-5, atol=1e-6)


def test_a_mirrored_run_trains_on_the_mirrored_stream_and_records_it(slices, tmp_path, monkeypatch):
    from dcganlib import data

    seen, stream = [], data.epoch_stream

    def recording(*args, **kwargs):
        seen.append(kwargs.get("mirror"))
        return stream(*args, **kwargs)

    monkeypatch.setattr(data, "epoch_stream", recording)
    result = training.train(tiny_config(slices, epochs=1, mirror=True, track_ssim=False), tmp_path / "mirrored")
    assert seen == [True]
    assert Config.from_json(result.run_dir / runs.CONFIG_FILE).mirror is True


def test_ema_ramp_follows_the_half_life_schedule():
    from dcganlib.gan import ema_decay

    assert ema_decay(0, 0.99, 0.0) == 0.0 and ema_decay(5, 0.99, 0.0) == pytest.approx(0.99)
    assert ema_decay(0, 0.99, 0.05) == 0.0
    assert ema_decay(100, 0.99, 0.05) == pytest.approx(0.5 ** (1 / 5))  # half-life 0.05 × 100 = 5 steps
    assert ema_decay(10_000, 0.99, 0.05) == pytest.approx(0.99)  # capped at ema's own half-life (69 steps)
    steps = np.arange(0, 3000, 7)
    tensor = keras.ops.convert_to_numpy(ema_decay(keras.ops.convert_to_tensor(steps), 0.99, 0.05))
    np.testing.assert_allclose(tensor, [ema_decay(int(t), 0.99, 0.05) for t in steps], rtol=1e-5, atol=1e-7)
    assert np.all(np.diff(tensor) >= 0)  # the average only ever slows down


def test_ramped_ema_generator_holds_the_scheduled_average():
    config = smoke_config(ema=0.9, ema_rampup=0.5)
    gan = gan_module.build_gan(config)
    rng = np.random.default_rng(4)
    expected = None
    for step in range(4):
        gan.train_step(tf.constant(rng.uniform(-1, 1, (8, 32, 32, 1)).astype("float32")))
        raw = [v.numpy().copy() for v in gan.generator.trainable_variables]
        beta = gan_module.ema_decay(step, 0.9, 0.5)  # 0, 0.25, 0.5, 0.63: half-lives 0, 0.5, 1, 1.5 steps
        expected = raw if expected is None else [beta * e + (1 - beta) * w for e, w in zip(expected, raw)]
    for want, got in zip(expected, gan.sampling_generator().trainable_variables):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-7)


def test_r1_and_r2_are_gamma_half_the_squared_input_gradient_applied_every_kth_step():
    from dcganlib import losses

    config = smoke_config(image_size=16, r1_gamma=2.0, r2_gamma=0.5, penalty_every=3)
    inputs = keras.Input((16, 16, 1))
    weights = np.random.default_rng(0).normal(size=(256, 1)).astype("float32")
    logit = keras.layers.Dense(1, use_bias=False, kernel_initializer=keras.initializers.Constant(weights))(
        keras.layers.Flatten()(inputs))
    linear = keras.Model(inputs, logit)  # D(x) = w·x, so ∇ₓD = w for every image
    from dcganlib.models import build_generator

    gan = gan_module.DCGAN(build_generator(config), linear, loss_pair=losses.get_loss_pair(config),
                           latent_dim=config.latent_dim, seed=0, r1_gamma=2.0, r2_gamma=0.5, penalty_every=3)
    gan.compile(keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4))
    images = tf.constant(np.zeros((4, 16, 16, 1), "float32"))
    squared = float((weights ** 2).sum())
    penalty = lambda model: float(model.discriminate(images, images, model.penalty_due())[2])  # noqa: E731
    assert penalty(gan) == pytest.approx(3 * (2.0 / 2 + 0.5 / 2) * squared, rel=1e-5)
    gan.d_optimizer.iterations.assign(1)
    assert penalty(gan) == 0.0  # not due: lazy
    gan.d_optimizer.iterations.assign(6)
    assert penalty(gan) == pytest.approx(3.75 * squared, rel=1e-5)
    real_logits, fake_logits, _, _ = gan.discriminate(images, images + 1.0)  # the logits of the same passes
    np.testing.assert_allclose(fake_logits.numpy() - real_logits.numpy(), weights.sum(), rtol=1e-5)
    plain = gan_module.build_gan(smoke_config(image_size=16, r1_gamma=0.0))
    assert penalty(plain) == 0.0


def test_penalty_rampup_scales_gamma_linearly_with_ds_step_and_build_gan_passes_it():
    from dcganlib import losses

    config = smoke_config(image_size=16)
    inputs = keras.Input((16, 16, 1))
    weights = np.random.default_rng(1).normal(size=(256, 1)).astype("float32")
    logit = keras.layers.Dense(1, use_bias=False, kernel_initializer=keras.initializers.Constant(weights))(
        keras.layers.Flatten()(inputs))
    linear = keras.Model(inputs, logit)  # ∇ₓD = w: the full penalty is k · γ/2 · ‖w‖²
    from dcganlib.models import build_generator

    gan = gan_module.DCGAN(build_generator(config), linear, loss_pair=losses.get_loss_pair(config),
                           latent_dim=config.latent_dim, seed=0, r1_gamma=2.0, penalty_every=2, penalty_rampup=10)
    gan.compile(keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4))
    images = tf.constant(np.zeros((4, 16, 16, 1), "float32"))
    full = 2 * 2.0 / 2 * float((weights ** 2).sum())
    for step, share in ((0, 0.0), (4, 0.4), (8, 0.8), (10, 1.0), (26, 1.0)):
        gan.d_optimizer.iterations.assign(step)
        assert float(gan.discriminate(images, images, True)[2]) == pytest.approx(share * full, rel=1e-5, abs=1e-6)
    assert gan_module.build_gan(smoke_config(penalty_rampup=7)).penalty_rampup == 7
    assert float(gan_module.build_gan(smoke_config()).penalty_scale()) == 1.0  # off: γ from the first step
    with pytest.raises(ConfigError, match="penalty_rampup"):
        smoke_config(penalty_rampup=-1)


def test_lazy_penalty_compiles_two_steps_and_applies_the_penalty_on_every_kth_step():
    """fit()'s train function with a lazy R1 makes the updates of eager steps with the penalty on steps
    0, 2 (penalty_every 2) and off on 1, 3 — and not those of a penalty on every step."""
    from dcganlib import losses, models

    config = smoke_config(r1_gamma=5.0, penalty_every=2)

    def make(reference=None):
        gan = FixedNoiseGAN(models.build_generator(config), models.build_discriminator(config),
                            loss_pair=losses.get_loss_pair(config), latent_dim=config.latent_dim, seed=0,
                            r1_gamma=5.0, penalty_every=2)
        gan.compile(keras.optimizers.SGD(0.05), keras.optimizers.SGD(0.05))
        if reference is not None:
            gan.set_weights(reference.get_weights())
        return gan

    real = tf.constant(np.random.default_rng(4).uniform(-1, 1, (8, 32, 32, 1)).astype("float32"))
    compiled = make()
    eager, every_step = make(compiled), make(compiled)
    compiled.make_train_function()
    iterator = iter(tf.data.Dataset.from_tensors(real).repeat())
    for due in (True, False, True, False):
        compiled.train_function(iterator)
        eager.step(real, due)
        every_step.step(real, True)
    got, want, other = ([v.numpy() for v in gan.discriminator.trainable_variables]
                        for gan in (compiled, eager, every_step))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)
    assert max(float(np.max(np.abs(g - o))) for g, o in zip(got, other)) > 1e-5  # the check sees the laziness


@pytest.mark.parametrize("networks", [{"d_norm": "spectral"},
                                      {"generator": "residual", "discriminator": "residual", "d_norm": "none",
                                       "generator_upsample": "bilinear", "generator_activation": "leaky_relu"}],
                         ids=["spectral-d", "residual"])
@pytest.mark.skipif(hardware.bfloat16_would_crash(), reason=BFLOAT16_CRASH)
def test_modern_options_train_finite_and_change_both_networks(networks):
    # The residual blocks' last convolutions start at zero, so their first ones get no gradient in the first
    # step: three steps move every kernel.
    config = smoke_config(loss="rpgan", r1_gamma=0.1, r2_gamma=0.1, penalty_every=2, ema=0.99,
                          ema_rampup=0.05, beta_1=0.0, beta_2=0.99, augment="translation", **networks)
    gan = gan_module.build_gan(config, "mixed_bfloat16")
    real = tf.constant(np.random.default_rng(5).uniform(-1, 1, (8, 32, 32, 1)).astype("float32"))
    # every kernel moves (the logit's bias does not: the relativistic loss sees only logit differences)
    variables = [v for v in gan.generator.trainable_variables + gan.discriminator.trainable_variables
                 if "kernel" in v.path]
    before = [v.numpy().copy() for v in variables]
    for _ in range(3):
        logs = gan.train_step(real)
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert all(not np.array_equal(b, v.numpy()) for b, v in zip(before, variables))


def test_feature_matching_changes_only_gs_update_and_reports_its_loss():
    """g_feature_matching λ: G's loss gains λ · feature_matching_loss on D's deepest features (4×4 at 32 px with
    the smoke widths); D's update is the one without it, G's is not, and the history reports the loss."""
    from dcganlib import losses, models

    real = tf.constant(np.random.default_rng(8).uniform(-1, 1, (8, 32, 32, 1)).astype("float32"))
    after = {}
    for weight in (0.0, 5.0):
        gan = gan_module.build_gan(smoke_config(g_feature_matching=weight, r1_gamma=0.0))
        assert (gan.matched_features is None) == (weight == 0.0)
        logs = gan.train_step(real)
        assert (gan_module.FEATURE_MATCHING_METRIC in logs) == (weight > 0)
        after[weight] = ([v.numpy() for v in gan.generator.trainable_variables],
                         [v.numpy() for v in gan.discriminator.trainable_variables], logs)
    for plain, matched in zip(after[0.0][1], after[5.0][1]):
        np.testing.assert_array_equal(plain, matched)  # the same D step: the noise and weights are seeded
    assert max(float(np.max(np.abs(p - m))) for p, m in zip(after[0.0][0], after[5.0][0])) > 1e-6
    assert float(after[5.0][2]["g_loss"]) == pytest.approx(float(after[0.0][2]["g_loss"]), rel=1e-5)
    matching = float(after[5.0][2][gan_module.FEATURE_MATCHING_METRIC])
    assert matching > 0 and np.isfinite(matching)
    # the reported value is the loss of the step's batches: D's features of the real batch and of G(z) before
    # the update (a fresh model with the same seed draws the same z)
    fresh = gan_module.build_gan(smoke_config(g_feature_matching=5.0, r1_gamma=0.0))
    side = models.deepest_feature_side(fresh.discriminator)
    assert side == 4 and fresh.matched_features.outputs[1].shape[1] == side
    fake = fresh.generator(fresh.sample_noise(8), training=True)
    by_hand = losses.feature_matching_loss(fresh.matched_features(real, training=True)[1],
                                           fresh.matched_features(fake, training=True)[1])
    assert matching == pytest.approx(float(by_hand), rel=1e-4)


def test_self_supervised_d_adds_the_decoders_l1_error_and_trains_the_decoder_with_d():
    """d_reconstruct: D's loss gains λ · E|decoder(features(x)) − pool₂(x)| on the real batch, from the pass
    that gives the real logits (with and without the penalty); D's optimizer trains the decoder, whose
    error falls on a fixed batch; the decoder is in the checkpoint."""
    from dcganlib import models

    config = smoke_config(d_reconstruct=2.0, r1_gamma=0.1, penalty_every=2)
    gan = gan_module.build_gan(config)
    real = tf.constant(np.random.default_rng(6).uniform(-1, 1, (8, 32, 32, 1)).astype("float32"))
    logits, features = models.discriminator_features(gan.discriminator, 8)(real, training=True)
    redrawn = gan.decoder(features, training=True).numpy()
    pooled = real.numpy().reshape(8, 16, 2, 16, 2, 1).mean(axis=(2, 4))
    by_hand = float(np.abs(redrawn - pooled).mean())
    for due in (False, True):
        real_logits, _, penalty, error = gan.discriminate(real, real, due)
        assert float(error) == pytest.approx(by_hand, rel=1e-5)
        np.testing.assert_allclose(real_logits.numpy(), logits.numpy(), rtol=1e-5, atol=1e-6)
        assert (float(penalty) > 0) == due
    assert set(v.path for v in gan.decoder.trainable_variables) <= set(v.path for v in gan.d_variables)
    before = [v.numpy().copy() for v in gan.decoder.trainable_variables]
    errors = [float(gan.train_step(real)[gan_module.RECONSTRUCTION_METRIC]) for _ in range(25)]
    assert all(not np.array_equal(b, v.numpy()) for b, v in zip(before, gan.decoder.trainable_variables))
    assert errors[-1] < 0.9 * errors[0], errors  # a running mean over the steps (25 steps: 0.276 -> 0.230)
    checkpoint = gan_module.make_checkpoint(gan, tf.Variable(0))
    assert "decoder" in checkpoint._trackable_children()
    assert "decoder" not in gan_module.make_checkpoint(gan_module.build_gan(smoke_config()),
                                                       tf.Variable(0))._trackable_children()
