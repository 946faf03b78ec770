"""Model loading: a .keras file (safe mode), named errors for missing or corrupt ones."""

import pytest

from bibcrop.inference.loading import load_keras
from bibcrop.model.weight_import import CheckpointError


def test_a_cut_short_keras_model_names_the_file_not_file_not_found(tmp_path, tiny_model):
    path = tmp_path / "model.keras"
    tiny_model.save(path)
    assert load_keras(path, "crop.model_path").count_params() > 0
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"crop.model_path: .*model.keras is not a"):
        load_keras(path, "crop.model_path")


def test_a_missing_model_file_names_it_and_the_command_that_writes_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model.keras is missing: run `bibcrop train`"):
        load_keras(tmp_path / "model.keras")
