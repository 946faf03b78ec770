import json

from bibcrop.cli import main


def test_model_info_reports_the_reference_count_and_official_names(capsys, tmp_path):
    args = ["model/backbone=mobilenetv2", "model/head=deeplabv3plus", "dataset.num_classes=19",
            "--official-names",
            f"hydra.run.dir={tmp_path}"]  # fmt: skip
    assert main(["model-info", *args]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["total_params"] == 2_763_843
    assert info["output_stride"] == 16
    assert info["trainable_params"] < info["total_params"]  # BN moving statistics
    names = {w["official_name"] for w in info["weights"]}
    assert {"logits/semantic/weights", "decoder/feature_projection0/weights"} <= names
    assert all(len(w["shape"]) >= 1 for w in info["weights"])
