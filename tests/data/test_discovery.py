"""Finding splits by pattern (any depth, LIP and CIHP layouts) and pairing through id lists."""

from __future__ import annotations

from pathlib import Path

from bibcrop.data.discovery import Root, find_split, pair_jobs, read_id_list


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_lip_layout_at_any_depth_with_doubled_folders(tmp_path):
    touch(
        tmp_path,
        "TrainVal_images/TrainVal_images/train_images/1_a.jpg",
        "TrainVal_images/TrainVal_images/train_images/2_b.jpg",
        "TrainVal_images/TrainVal_images/val_images/9_z.jpg",
        "deeper/still/TrainVal_parsing_annotations/train_segmentations/1_a.png",
        "deeper/still/TrainVal_parsing_annotations/train_segmentations/2_b.png",
        "TrainVal_images/TrainVal_images/train_images/notes.txt",
    )
    (tmp_path / "TrainVal_images/train_id.txt").write_text("1_a\n\n2_b.jpg\n")
    found = find_split([Root(tmp_path, "src/")], "train")

    assert sorted(found.images) == ["1_a", "2_b"], "val images and .txt files are not train data"
    assert sorted(found.labels) == ["1_a", "2_b"]
    assert found.listed == ["1_a", "2_b"]
    assert found.id_list == "src/TrainVal_images/train_id.txt"
    jobs, unlisted = pair_jobs(found)
    assert [(j.id, j.image.name, j.label.name) for j in jobs] == [
        ("1_a", "1_a.jpg", "1_a.png"),
        ("2_b", "2_b.jpg", "2_b.png"),
    ]
    assert jobs[0].shown_image == "src/TrainVal_images/TrainVal_images/train_images/1_a.jpg"
    assert unlisted == []


def test_cihp_layout(tmp_path):
    touch(
        tmp_path,
        "instance-level_human_parsing/Training/Images/0001.jpg",
        "instance-level_human_parsing/Training/Category_ids/0001.png",
        "instance-level_human_parsing/Training/Categories/0001.png",  # colour renderings
        "instance-level_human_parsing/Validation/Images/0002.jpg",
        "instance-level_human_parsing/Validation/Category_ids/0002.png",
    )
    (tmp_path / "instance-level_human_parsing/Validation/val_id.txt").write_text("0002\n")
    train = find_split([Root(tmp_path, "")], "train")
    val = find_split([Root(tmp_path, "")], "val")
    assert (list(train.images), list(train.labels), train.listed) == (["0001"], ["0001"], None)
    assert (list(val.images), list(val.labels), val.listed) == (["0002"], ["0002"], ["0002"])


def test_without_id_list_every_id_is_a_job_and_missing_partners_show(tmp_path):
    touch(
        tmp_path,
        "a/train_images/1.jpg",
        "a/train_images/2.jpg",
        "b/train_segmentations/2.png",
        "b/train_segmentations/3.png",
    )
    found = find_split([Root(tmp_path, "")], "train")
    jobs, unlisted = pair_jobs(found)
    assert found.listed is None and unlisted == []
    assert [(j.id, j.image is not None, j.label is not None) for j in jobs] == [
        ("1", True, False),
        ("2", True, True),
        ("3", False, True),
    ]


def test_id_list_decides_membership(tmp_path):
    touch(tmp_path, "train_images/1.jpg", "train_images/2.jpg", "train_segmentations/1.png")
    (tmp_path / "train_id.txt").write_text("1\n4\n1\n")
    jobs, unlisted = pair_jobs(find_split([Root(tmp_path, "")], "train"))
    assert [j.id for j in jobs] == ["1", "4"], "listed ids only, each once"
    assert jobs[1].image is None and jobs[1].label is None
    assert unlisted == ["2"]


def test_hidden_files_macosx_and_skipped_root_are_not_data(tmp_path):
    touch(
        tmp_path,
        "train_images/1.jpg",
        "train_images/._1.jpg",
        "__MACOSX/train_images/1.jpg",
        "work/train_images/9.jpg",
    )
    found = find_split([Root(tmp_path, "", skip=tmp_path / "work")], "train")
    assert list(found.images) == ["1"] and found.duplicates == []


def test_first_root_wins_and_duplicates_are_recorded(tmp_path):
    touch(tmp_path, "folder/train_images/1.jpg", "zip/train_images/1.jpg")
    roots = [Root(tmp_path / "folder", "src/"), Root(tmp_path / "zip", "src/X.zip!/")]
    found = find_split(roots, "train")
    assert found.images["1"] == tmp_path / "folder/train_images/1.jpg"
    assert found.duplicates == ["src/X.zip!/train_images/1.jpg"]


def test_read_id_list_strips_bom_blanks_and_extensions(tmp_path):
    path = tmp_path / "val_id.txt"
    path.write_bytes("\ufeff10_1\r\n  11_2.png \n\n".encode())
    assert read_id_list(path) == ["10_1", "11_2"]
