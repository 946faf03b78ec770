"""Issue 28: the GPU recipe can be tried at smoke size on a CPU first, as a user would
before renting a GPU; what the CPU cannot do (XLA with mixed precision) is switched off
in one line."""

from __future__ import annotations

import numpy as np
import pytest

from bibcrop.config import compose_config
from bibcrop.training import runtime


def test_xla_goes_off_only_where_it_cannot_compile_mixed_precision(capsys):
    assert runtime.xla_here(False, "bf16") is False
    assert runtime.xla_here(True, None) is True  # float32: XLA compiles it on a CPU
    assert runtime.xla_here(True, "bf16") is False  # this machine has no GPU or TPU
    (line,) = capsys.readouterr().out.splitlines()
    assert "XLA off for this run" in line and "train.mixed_precision=bf16" in line


@pytest.mark.slow
def test_the_gpu_recipe_trains_at_smoke_size_on_a_cpu(tmp_path, store, capsys):
    from bibcrop.data.tfrecords import build
    from bibcrop.stages import train
    from tests.helpers.tinydata import write_extracted

    extracted = write_extracted(tmp_path / "extracted", {"train": 4, "val": 2})
    build(extracted, tmp_path / "tfrecords", {"train": 1, "val": 1}, workers=1)
    cfg = compose_config([
        "experiment=lip_mnv2_gpu", "debug=smoke", "dataset=synthetic_lip", *store.overrides,
        f"paths.tfrecords={tmp_path / 'tfrecords'}", f"paths.reports={tmp_path / 'reports'}",
        f"train.output_dir={tmp_path / 'train'}", f"train.backup_dir={tmp_path / 'backup'}",
    ])  # fmt: skip
    assert (cfg.train.mixed_precision, cfg.train.xla) == ("bf16", True)  # the recipe's own
    try:
        result = train.run(cfg)
    finally:
        runtime.set_precision(None)  # the global policy back for the tests that follow
    assert result["global_step"] == cfg.train.steps and np.isfinite(result["final_loss"])
    assert "XLA off for this run" in capsys.readouterr().out


def test_the_computed_class_weights_reach_the_training_loop(tmp_path, store, monkeypatch):
    """Switching XLA by machine must not drop the class weights computed just before it
    (the demo's loss is weighted: without them its val mIoU fell from 0.5604 to 0.5298)."""
    from bibcrop.data.tfrecords import build
    from bibcrop.stages import train
    from bibcrop.training import trainer
    from tests.helpers.tinydata import write_extracted

    seen = {}

    def loop(job, tracking, strategy, worker, output, run):
        seen["weights"] = job.train.class_weights
        return {"global_step": 0, "resumed_from_step": 0, "run_id": run.info.run_id}

    monkeypatch.setattr(trainer, "_train", loop)
    extracted = write_extracted(tmp_path / "extracted", {"train": 4, "val": 2})
    build(extracted, tmp_path / "tfrecords", {"train": 1, "val": 1}, workers=1)
    cfg = compose_config([
        "debug=smoke", *store.overrides, "train.class_weights=sqrt_median_frequency",
        f"paths.tfrecords={tmp_path / 'tfrecords'}", f"paths.reports={tmp_path / 'reports'}",
        f"train.output_dir={tmp_path / 'train'}", f"train.backup_dir={tmp_path / 'backup'}",
    ])  # fmt: skip
    train.run(cfg)
    assert seen["weights"] is not None and len(seen["weights"]) == 20
