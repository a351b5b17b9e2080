import json

import pytest

from dcganlib.config import Config, default_config, smoke_config
from dcganlib.errors import ConfigError


def test_json_round_trip(tmp_path):
    config = smoke_config(seed=7, loss="lsgan")
    config.to_json(tmp_path / "config.json")
    assert Config.from_json(tmp_path / "config.json") == config
    assert not (tmp_path / "config.json.tmp").exists()


def test_config_is_frozen():
    with pytest.raises(Exception):
        default_config().seed = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"image_size": 2}, "'image_size'"),
        ({"channels": 2}, "'channels'"),
        ({"loss": "wasserstein"}, "'loss' must be one of"),
        ({"batch_size": 0}, "'batch_size'"),
        ({"batch_size": True}, "'batch_size' must be int"),
        ({"grid_size": 10}, "square number"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, "sum < 1"),
        ({"label_smoothing": 0.1, "loss": "hinge"}, "applies to loss 'bce' only"),
        ({"g_learning_rate": 0}, "'g_learning_rate'"),
        ({"data": 3}, "'data' must be str"),
    ],
)
def test_invalid_values_name_the_key(changes, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        Config().replace(**changes)


def test_unknown_keys_are_named(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"image_size": 64, "learning_rate": 1e-3, "epoch": 3}))
    with pytest.raises(ConfigError, match="unknown config key\\(s\\): epoch, learning_rate"):
        Config.from_json(path)


def test_bad_json_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        Config.from_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        Config.from_json(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        Config.from_json(tmp_path / "list.json")


def test_diff_ignores_epochs():
    a = smoke_config()
    b = a.replace(epochs=10, seed=5)
    assert a.diff(b) == {"seed": (42, 5)}


def test_a_saved_config_from_before_a_feature_switch_existed_reads_as_that_feature_off(tmp_path):
    """A run saved before g_widths, g_excitation, … existed trained without them: its config.json lacks the
    keys, and a resume must not count them as missing (it would refuse). Any other lacking key is missing."""
    from dataclasses import fields

    from dcganlib.config import ADDED_SWITCHES, read_saved_config

    off = {"g_head_filters": 0, "g_widths": "", "g_excitation": False, "d_reconstruct": 0.0,
           "d_minibatch_std": 0, "ada_target": 0.0, "penalty_rampup": 0, "d_stem_filters": 0,
           "discriminator": "dcgan", "mirror": False, "g_bfloat16_rounding": False, "g_feature_matching": 0.0}
    assert ADDED_SWITCHES == off
    old = {k: v for k, v in Config().to_dict().items() if k not in ADDED_SWITCHES and k != "beta_2"}
    (tmp_path / "config.json").write_text(json.dumps(old))
    config, missing = read_saved_config(tmp_path / "config.json")
    assert missing == ("beta_2",)
    # the lacking switches read as off, also where today's default turns one on
    assert config == Config().replace(**off) and Config().architecture_diff(config, missing) == []
    assert {f.name for f in fields(Config)} - set(old) == set(ADDED_SWITCHES) | {"beta_2"}
