"""Flattening the config into params, and keeping secrets out of them."""

from __future__ import annotations

import yaml
from omegaconf import OmegaConf

from bibcrop.tracking.redact import (
    MASK,
    MAX_PARAM_VALUE,
    config_params,
    env_secret_values,
    flatten,
    redact_text,
    redact_tree,
    redacted_yaml,
)
from bibcrop.tracking.settings import TrackingSettings, settings_from


def test_flatten_uses_dotted_keys_and_keeps_lists_whole():
    flat = flatten({"a": {"b": {"c": 1}, "d": [1, 2]}, "e": {}})
    assert flat == {"a.b.c": 1, "a.d": [1, 2], "e": {}}


def test_config_params_are_strings_without_the_hydra_node():
    cfg = OmegaConf.create(
        {
            "model": {"crop": [129, 129], "os": 16},
            "x": "${model.os}",
            "hydra": {"run": {"dir": "somewhere"}},
        }
    )
    assert config_params(cfg) == {"model.crop": "[129, 129]", "model.os": "16", "x": "16"}


def test_long_values_are_truncated_to_mlflow_limit():
    params = config_params({"notes": "x" * (MAX_PARAM_VALUE + 50)})
    assert len(params["notes"]) == MAX_PARAM_VALUE and params["notes"].endswith("...")


def test_secret_keys_are_masked_whole_subtree_included():
    tree = {
        "db": {"password": "hunter22", "host": "h"},
        "api_key": "k123456",
        "aws": {"secret_access_key": "zzz"},
        "secrets": {"anything": "v"},
        "HF_TOKEN": "t",
        "crop_size": [1, 2],
    }
    assert redact_tree(tree, env_secrets=[]) == {
        "db": {"password": MASK, "host": "h"},
        "api_key": MASK,
        "aws": {"secret_access_key": MASK},
        "secrets": MASK,
        "HF_TOKEN": MASK,
        "crop_size": [1, 2],
    }


def test_uri_credentials_and_secret_query_parameters_are_masked():
    assert redact_text("postgresql://bob:pw@db:5432/x", []) == "postgresql://***@db:5432/x"
    assert redact_text("see https://user@host/p and s3://a:b@bucket/k", []) == (
        "see https://***@host/p and s3://***@bucket/k"
    )
    assert redact_text("https://h/x?a=1&token=abc&sig=zz", []) == (
        "https://h/x?a=1&token=***&sig=***"
    )
    assert redact_text("http://127.0.0.1:5000", []) == "http://127.0.0.1:5000"


def test_values_of_secret_environment_variables_are_scrubbed_anywhere():
    env = {"MY_API_TOKEN": "s3cr3t-value", "HOME": "/root", "SHORT_TOKEN": "ab"}
    assert env_secret_values(env) == ["s3cr3t-value"]
    tree = {"note": "uses s3cr3t-value here", "home": "/root"}
    assert redact_tree(tree, env_secrets=env_secret_values(env)) == {
        "note": f"uses {MASK} here",
        "home": "/root",
    }


def test_redacted_yaml_is_valid_yaml_without_the_secret():
    text = redacted_yaml({"db": {"password": "hunter22"}, "n": 1})
    assert yaml.safe_load(text) == {"db": {"password": MASK}, "n": 1}


def test_settings_defaults_match_the_config_group(repo_root):
    group = yaml.safe_load((repo_root / "conf" / "mlflow" / "default.yaml").read_text())
    assert vars(settings_from(None)) == vars(TrackingSettings()) == group


def test_settings_reject_unknown_keys_and_replace_lineage_mapping():
    import pytest
    from omegaconf.errors import ConfigKeyError

    with pytest.raises(ConfigKeyError):
        settings_from({"mlflow": {"experiment_nmae": "x"}})
    mapped = settings_from({"mlflow": {"lineage": {"os": "model.output_stride"}}})
    assert mapped.lineage == {"os": "model.output_stride"}
