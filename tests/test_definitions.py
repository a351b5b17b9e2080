"""The definitions written into every metrics.json come from the constants the metrics compute with, so a
changed constant cannot leave a stale sentence behind (each definition is an f-string over its module's
constants; these tests fail when one is typed out by hand again)."""

from __future__ import annotations

import importlib

import pytest

from dcganlib import evaluate
from dcganlib.metrics import artefacts, distances, features, memorisation, prdc, two_sample

ssim = importlib.import_module("dcganlib.metrics.ssim")  # the package's `ssim` is the function


def test_two_sample_definition_states_the_classifier_the_code_builds():
    assert f"{'-'.join(map(str, two_sample.WIDTHS))} filters" in two_sample.DEFINITION
    assert f"at most {two_sample.MAX_SIZE} px" in two_sample.DEFINITION
    assert f"Adam {two_sample.LEARNING_RATE:g}" in two_sample.DEFINITION
    model = two_sample.build_classifier((16, 16, 1), seed=0)
    convs = [layer.filters for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert tuple(convs) == two_sample.WIDTHS


def test_feature_space_definition_counts_its_features():
    assert f"{', '.join(map(str, features.WIDTHS))} filters" in features.DEFINITION
    assert f"({2 * sum(features.WIDTHS)} features)" in features.DEFINITION
    assert f"{features.FEATURE_SIZE}x{features.FEATURE_SIZE}" in features.DEFINITION


@pytest.mark.parametrize("module, constant, text", [
    (prdc, "DEFAULT_K", "k = {}"),
    (distances, "KID_DEGREE", "+ 1)^{}"),
    (memorisation, "SSIM_CANDIDATES", "among the {} nearest"),
    (memorisation, "PERCENTILE", "percentile {:g}"),
    (ssim, "SSIM_FILTER_SIGMA", "sigma {}"),
    (ssim, "SSIM_K2", "K2 {}"),
])
def test_a_changed_constant_changes_its_definition(module, constant, text, monkeypatch):
    """Reload the module with another value of the constant: its definition must follow."""
    source = module.__spec__.loader.get_source(module.__name__)
    old = getattr(module, constant)
    new = old * 2 if not isinstance(old, int) else old + 1
    assert text.format(old) in _definitions(module)
    namespace = {"__name__": module.__name__, "__package__": module.__package__}
    patched = source.replace(f"{constant} = {old!r}", f"{constant} = {new!r}", 1)
    assert patched != source, f"{constant} = {old!r} not found in {module.__name__}"
    exec(compile(patched, module.__file__, "exec"), namespace)  # a copy; the imported module is untouched
    assert text.format(new) in " ".join(v for k, v in namespace.items() if k.endswith("DEFINITION") and isinstance(v, str))


def _definitions(module) -> str:
    return " ".join(v for k, v in vars(module).items() if k.endswith("DEFINITION") and isinstance(v, str))


def test_tissue_definition_follows_the_one_tissue_level():
    from dcganlib.pixels import TISSUE_LEVEL

    assert artefacts.TISSUE_LEVEL is TISSUE_LEVEL
    assert f"above {TISSUE_LEVEL:.0%} of the range (tissue, levels {artefacts._TISSUE_BELOW} and up)" in \
        artefacts.INTENSITY_DEFINITION


def test_metrics_json_definitions_are_the_modules_own():
    d = evaluate.DEFINITIONS
    assert d["two_sample_test"] is two_sample.DEFINITION
    assert d["memorisation"] is memorisation.DEFINITION
    for part in (features.DEFINITION, distances.DEFINITION, prdc.DEFINITION):
        assert part in d["feature_metrics"]
    assert d["spectrum"] is artefacts.SPECTRUM_DEFINITION and d["tissue_intensity"] is artefacts.INTENSITY_DEFINITION
    assert str(evaluate.DIVERSITY_MAX_IMAGES) in d["diversity"] and str(ssim.MS_SSIM_MIN_SIZE) in d["ms_ssim"]
    assert "16-32-64-128-128" not in str(d)
