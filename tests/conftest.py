"""Shared test set-up: quiet TensorFlow, no GPU, tiny images written to tmp folders."""

import os
from pathlib import Path

# Must happen before TensorFlow is imported anywhere in the test session: no GPU, and dcganlib's quiet
# terminal (dcganlib.terminal) prepared for the first TensorFlow import.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# A plain `pytest` is the smoke run too: no test (and no notebook under nbval, whose kernels inherit this
# environment) may start a full training or write the tracked images/. `DCGANLIB_SMOKE=0 pytest notebooks/`
# asks for the full notebooks explicitly.
os.environ.setdefault("DCGANLIB_SMOKE", "1")
import dcganlib  # noqa: E402,F401


# ---- data fixtures (owned by the data work) -------------------------------------------------------
import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _graphs_without_rewrites():
    """helpers.skip_graph_rewrites in each process that runs tests (not at import: pytest-xdist's controller
    runs none and need not import TensorFlow)."""
    from helpers import skip_graph_rewrites

    skip_graph_rewrites()


@pytest.fixture(scope="session", autouse=True)
def _isolated_dcganlib_cache(tmp_path_factory):
    """Demo builds and decoded-image caches go to a session temp folder, never to ~/.cache."""
    previous = os.environ.get("DCGANLIB_CACHE")
    os.environ["DCGANLIB_CACHE"] = str(tmp_path_factory.mktemp("dcganlib_cache"))
    yield
    if previous is None:
        os.environ.pop("DCGANLIB_CACHE", None)
    else:
        os.environ["DCGANLIB_CACHE"] = previous


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory):
    """A tiny embedded demo dataset (120 slices of 64 px, OASIS layout), built once per session."""
    from dcganlib.data.demo import build_demo_dataset

    return build_demo_dataset(tmp_path_factory.mktemp("demo") / "demo", count=120, size=64, seed=0)


@pytest.fixture
def make_png_folder(tmp_path):
    """Factory: ``make_png_folder(subjects=4, slices=3, size=20)`` writes random 8-bit grey PNGs named
    ``case_XXX_slice_Y.nii.png`` into a fresh folder under ``tmp_path`` and returns that folder."""
    import numpy as np
    from PIL import Image

    counter = iter(range(10**6))

    def make(subjects: int = 4, slices: int = 3, size: int = 20, name: str = "case_{s:03d}_slice_{i}.nii.png",
             seed: int = 0):
        folder = tmp_path / f"pngs{next(counter)}"
        folder.mkdir()
        rng = np.random.default_rng(seed)
        for s in range(subjects):
            for i in range(slices):
                image = rng.integers(0, 256, size=(size, size), dtype=np.uint8)
                Image.fromarray(image).save(folder / name.format(s=s + 1, i=i))
        return folder

    return make


# ---- one finished run shared by every test that only needs "a trained run folder" -------------------
@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """A finished 2-epoch run of :func:`helpers.tiny_config` on 40/12/12 ellipse slices (32 px), with the
    SSIM tracker's columns. **Read-only**: a test that changes it works on a ``shutil.copytree`` copy."""
    from dcganlib import training
    from helpers import tiny_config, write_slices

    data = write_slices(tmp_path_factory.mktemp("finished_data"), counts=(40, 12, 12))
    return training.train(tiny_config(data), tmp_path_factory.mktemp("finished") / "run")


# ---- the slow marker, applied by one rule ----------------------------------------------------------------
#: Fixtures that train, evaluate, build demo data or start processes: a test that uses one is slow.
SLOW_FIXTURES = {"finished_run", "smoke_run", "spoiled_run", "evaluated", "quick_evaluation", "population",
                 "scenario", "small_disk", "demo_data_dir"}
#: Modules whose tests train, kill or start TensorFlow processes themselves.
SLOW_MODULES = {"test_training", "test_faults", "test_terminal", "test_multi_worker", "test_evaluation_power"}
#: The xdist groups that take longest (wall seconds per group from ``--durations=0`` on a 2-core machine, in this
#: order: about 105, 80, 60, 50, 30, 55, 40, 25, 15, 20, 15). They are handed out first, so that no long group
#: starts last and leaves the other worker idle at the end (longest-processing-time-first scheduling; the
#: ``--no-loadscope-reorder`` in pyproject.toml keeps this order). The processes of test_multi_worker and the
#: notebooks' kernels compete with the other worker for the cores, so the order is the one that measured
#: faster, not strictly by the seconds (305 s for the whole suite against 321 s in longest-first order, on
#: EPYC-bf16). Other groups follow in collection order.
LONGEST_FIRST = ("test_faults", "test_evaluation_power", "test_training", "test_multi_worker", "test_evaluate",
                 "notebooks", "test_cli", "test_damaged_records", "test_models", "test_terminal", "test_tracking")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    """Mark ``slow`` every notebook, every test of :data:`SLOW_MODULES` and every test using one of
    :data:`SLOW_FIXTURES`, so that ``pytest -m "not slow"`` is a quick inner loop while CI runs everything.

    With ``-n 2`` (pytest-xdist, ``--dist loadgroup``) each test file is one group, so a module's fixtures are
    built once, and the notebooks are one group, run in order: chapter 4 evaluates chapter 3's run. The
    groups of :data:`LONGEST_FIRST` come first, in its order (a stable sort: the order inside a group stays)."""
    def group(item) -> str:
        path = Path(str(item.fspath))
        return "notebooks" if path.suffix == ".ipynb" else path.stem

    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(group(item), len(LONGEST_FIRST)))
    for item in items:
        module = getattr(item, "module", None)
        if group(item) == "notebooks" or (module is not None and module.__name__ in SLOW_MODULES) \
                or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        item.add_marker(pytest.mark.xdist_group(group(item)))
