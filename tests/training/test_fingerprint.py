from bibcrop.config import compose_config
from bibcrop.training.fingerprint import fingerprint, prepare_backup


def test_same_inputs_keep_the_backup_and_changed_ones_clear_it(tmp_path):
    cfg = compose_config([])
    current = fingerprint(cfg, "data-1")
    assert fingerprint(compose_config(["train.output_dir=elsewhere"]), "data-1") == current
    (tmp_path / "latest.weights.h5").write_bytes(b"of unknown origin")
    assert prepare_backup(tmp_path, current) is True  # no fingerprint: not ours to resume
    (tmp_path / "training_metadata.json").write_bytes(b"{}")
    assert prepare_backup(tmp_path, current) is False
    assert (tmp_path / "training_metadata.json").exists()
    changed = fingerprint(compose_config(["train.steps=1200"]), "data-1")
    assert changed["config"] != current["config"] and changed["code"] == current["code"]
    assert prepare_backup(tmp_path, changed) is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fingerprint.json"]
    assert prepare_backup(tmp_path, fingerprint(cfg, "data-2")) is True  # new data


def test_code_hash_covers_every_module_the_train_stage_imports(monkeypatch):
    from bibcrop.import_graph import code_files
    from bibcrop.training import fingerprint as fp

    files = {p.name for p in code_files(fp.CODE_ROOTS)}
    # the input pipeline, the LIP flip table, the model and the trainer itself
    assert {"input_pipeline.py", "lip_dataset.py", "deeplab.py", "trainer.py"} <= files
    cfg = compose_config([])
    before = fp.fingerprint(cfg, "data")["code"]
    monkeypatch.setattr(fp, "CODE_ROOTS", ("bibcrop.data.lip_dataset",))
    assert fp.fingerprint(cfg, "data")["code"] != before
