from bibcrop.cli import main


def test_stage_writes_lip_zips_and_race_photos(tmp_path, capsys):
    overrides = [
        f"paths.synthetic={tmp_path}", "synth.lip.num_train=4", "synth.lip.num_val=2",
        "synth.race.num_photos=2", "synth.race.width=200", "synth.race.height=120",
        f"hydra.run.dir={tmp_path / 'hydra'}",
    ]  # fmt: skip
    assert main(["synthesize", *overrides]) == 0
    assert "4 train + 2 val" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "lip").iterdir()) == [
        "TrainVal_images.zip", "TrainVal_parsing_annotations.zip",
    ]  # fmt: skip
    assert len(list((tmp_path / "race" / "photos").glob("*.jpg"))) == 2
