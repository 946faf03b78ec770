"""The importer on TF1 checkpoints written here from the reference variable lists."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bibcrop.config import compose_config
from bibcrop.model import ModelSettings, build_model
from bibcrop.model import weight_import as ckpt
from bibcrop.model.names import weight_table
from tests.helpers.modelkit import reference_shapes

# the checkpoints' head (the demo's default head is narrower)
LIP_HEAD = ["model/head=deeplabv3plus"]


def write_tf1_checkpoint(prefix, stem, seed=0):
    """A real TF1 (V2-format) checkpoint with random values, Momentum slots and global_step."""
    rng = np.random.default_rng(seed)
    shapes = reference_shapes(stem)
    values = {n: rng.normal(size=s).astype("float32") for n, s in shapes.items()}
    extra = {f"{n}/Momentum": np.zeros(s, "float32") for n, s in list(shapes.items())[:3]}
    names = sorted({**values, **extra})
    tensors = [values.get(n, extra.get(n)) for n in names]
    names.append("global_step")
    tensors.append(np.int64(30000))
    tf.raw_ops.SaveV2(
        prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
        tensors=tensors,
    )  # fmt: skip
    return values


def _value(model, official):
    row = next(r for r in weight_table(model) if r["official_name"] == official)
    return keras.ops.convert_to_numpy(row["variable"])


def test_pascal_checkpoint_into_the_lip_model_skips_the_head(tmp_path):
    values = write_tf1_checkpoint(
        tmp_path / "model.ckpt-30000", "deeplabv3_mnv2_pascal_train_aug_ckpt30000"
    )
    model = build_model(ModelSettings.from_cfg(compose_config(LIP_HEAD)))
    tensors = ckpt.read_tf1_checkpoint(tmp_path)  # a folder: the prefix is found inside
    assert "global_step" not in tensors and not any(n.endswith("/Momentum") for n in tensors)
    report = ckpt.import_deeplab_checkpoint(
        model, tensors, initialize_last_layer=False, last_layers_contain_logits_only=False
    )
    backbone = [r for r in weight_table(model) if r["official_name"].startswith("MobilenetV2/")]
    assert len(report.matched) == len(backbone) == 255
    assert len(report.skipped) == len(weight_table(model)) - 255
    assert report.missing == []
    assert len(report.unused) == 17  # PASCAL's aspp0, image_pooling, concat_projection, logits
    name = "MobilenetV2/expanded_conv_7/depthwise/depthwise_weights"
    np.testing.assert_array_equal(_value(model, name), values[name])
    name = "MobilenetV2/Conv/BatchNorm/moving_variance"
    np.testing.assert_array_equal(_value(model, name), values[name])


def test_lip_checkpoint_with_19_classes_imports_every_tensor(tmp_path):
    stem = "lip_mobilenetv2_ckpt60000"
    values = write_tf1_checkpoint(tmp_path / "model.ckpt-60000", stem, seed=1)
    model = build_model(
        ModelSettings.from_cfg(compose_config([*LIP_HEAD, "dataset.num_classes=19"]))
    )
    report = ckpt.import_deeplab_checkpoint(
        model, ckpt.read_tf1_checkpoint(tmp_path / "model.ckpt-60000")
    )
    assert (len(report.matched), report.skipped, report.missing, report.unused) == (
        len(values),
        [],
        [],
        [],
    )
    for name in ("logits/semantic/biases", "decoder/decoder_conv1_pointwise/BatchNorm/gamma",
                 "aspp2_depthwise/depthwise_weights"):  # fmt: skip
        np.testing.assert_array_equal(_value(model, name), values[name])


def test_class_count_clash_needs_initialize_last_layer_false(tmp_path):
    write_tf1_checkpoint(tmp_path / "model.ckpt-60000", "lip_mobilenetv2_ckpt60000")
    tensors = ckpt.read_tf1_checkpoint(tmp_path)
    model = build_model(
        ModelSettings.from_cfg(compose_config(LIP_HEAD))
    )  # 20 classes, the checkpoint has 19
    with pytest.raises(ValueError, match="initialize_last_layer=false"):
        ckpt.import_deeplab_checkpoint(model, tensors)
    report = ckpt.import_deeplab_checkpoint(
        model, tensors, initialize_last_layer=False, last_layers_contain_logits_only=True
    )
    assert sorted(report.skipped) == ["logits/semantic/biases", "logits/semantic/weights"]
    assert report.unused == sorted(report.skipped)
    assert len(report.matched) == len(tensors) - 2


def model_zoo_tarball(tmp_path, name: str, step: int):
    """``<tmp>/<name>.tar.gz`` laid out as the model zoo's: ``<name>/model.ckpt-<step>``."""
    import tarfile

    folder = tmp_path / "zoo"
    folder.mkdir()
    write_tf1_checkpoint(folder / f"model.ckpt-{step}", "deeplabv3_mnv2_pascal_train_aug_ckpt30000")
    archive = tmp_path / f"{name}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=name)
    return archive


def test_model_zoo_tarball_is_unpacked_safely(tmp_path):
    import tarfile

    archive = model_zoo_tarball(tmp_path, "deeplabv3_mnv2_pascal_train_aug", 30000)
    assert ckpt.checkpoint_prefix(archive).endswith(
        "deeplabv3_mnv2_pascal_train_aug/model.ckpt-30000"
    )
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 0
        tar.addfile(info)
    with pytest.raises(tarfile.FilterError):
        ckpt.checkpoint_prefix(evil)


def test_missing_files_say_where_to_put_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="Nothing is downloaded"):
        ckpt.checkpoint_prefix(tmp_path / "nope.tar.gz")
    with pytest.raises(FileNotFoundError, match="Keras ImageNet MobileNetV2 weights"):
        ckpt.import_keras_imagenet(None, tmp_path / "mobilenet_v2_no_top.h5")


def test_keras_imagenet_weights_land_in_the_backbone(tmp_path):
    keras.utils.set_random_seed(3)
    reference = keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), include_top=False, weights=None
    )
    path = tmp_path / "mobilenet_v2_no_top.weights.h5"
    reference.save_weights(path)
    model = build_model(ModelSettings.from_cfg(compose_config(LIP_HEAD)))
    report = ckpt.import_keras_imagenet(model, path)
    assert len(report.matched) == 255 and report.missing == []
    np.testing.assert_array_equal(
        _value(model, "MobilenetV2/expanded_conv_5/expand/weights"),
        keras.ops.convert_to_numpy(reference.get_layer("block_5_expand").kernel),
    )


# --- checkpoints that don't fit (issue 14, kind 3) ------------------------------------------


def xception_like_checkpoint(prefix):
    """A checkpoint laid out as DeepLab's Xception-65 (``xception_65/...`` scope, entry,
    middle x16 and exit flows, plus a head): the wrong network for the default model."""
    rng = np.random.default_rng(0)
    shapes = {
        "xception_65/entry_flow/conv1_1/weights": (3, 3, 3, 32),
        "xception_65/entry_flow/conv1_1/BatchNorm/gamma": (32,),
        "logits/semantic/weights": (1, 1, 256, 20),
        "logits/semantic/biases": (20,),
    }
    for unit in range(1, 17):
        scope = f"xception_65/middle_flow/block1/unit_{unit}/xception_module"
        for conv in (1, 2, 3):
            shapes[f"{scope}/separable_conv{conv}_depthwise/depthwise_weights"] = (3, 3, 728, 1)
            shapes[f"{scope}/separable_conv{conv}_pointwise/weights"] = (1, 1, 8, 8)
    names = sorted(shapes)
    tensors = [rng.normal(size=shapes[n]).astype("float32") for n in names]
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names,
                      shape_and_slices=[""] * len(names), tensors=tensors)  # fmt: skip


def test_an_xception_checkpoint_for_the_mobilenet_model_names_the_backbone_key(tmp_path):
    xception_like_checkpoint(tmp_path / "model.ckpt-1")
    model = build_model(ModelSettings.from_cfg(compose_config(LIP_HEAD)))
    tensors = ckpt.read_tf1_checkpoint(tmp_path)
    report = ckpt.import_deeplab_checkpoint(model, tensors, initialize_last_layer=False)
    assert report.matched == [] and len(report.unused) == len(tensors)  # "matched 0"
    with pytest.raises(ckpt.CheckpointError) as err:
        ckpt.check_backbone_match(model, tensors, report, 0.9, "train.init_checkpoint=x")
    message = str(err.value)
    assert "matched 0 of the model's 255 backbone tensors" in message
    assert "xception_65" in message and "set model/backbone=xception65" in message
    assert "train.min_backbone_match=0.9" in message and "Nothing was trained" in message


def test_another_depth_multiplier_names_that_key(tmp_path):
    write_tf1_checkpoint(tmp_path / "model.ckpt-1", "deeplabv3_mnv2_pascal_train_aug_ckpt30000")
    model = build_model(
        ModelSettings.from_cfg(compose_config([*LIP_HEAD, "model.backbone.depth_multiplier=0.5"]))
    )
    with pytest.raises(ckpt.CheckpointError, match=r"model.backbone.depth_multiplier"):
        ckpt.import_deeplab_checkpoint(
            model, ckpt.read_tf1_checkpoint(tmp_path), initialize_last_layer=False
        )


def test_a_checkpoint_with_part_of_the_backbone_is_below_the_share(tmp_path):
    shapes = reference_shapes("deeplabv3_mnv2_pascal_train_aug_ckpt30000")
    model = build_model(ModelSettings.from_cfg(compose_config(LIP_HEAD)))
    backbone = sorted(n for n in shapes if n.startswith("MobilenetV2/"))
    kept = {n: np.zeros(shapes[n], "float32") for n in backbone[: len(backbone) // 2]}
    report = ckpt.import_deeplab_checkpoint(model, kept, initialize_last_layer=False)
    share = len(kept) / 255
    assert ckpt.check_backbone_match(model, kept, report, share, "k") == pytest.approx(share)
    with pytest.raises(ckpt.CheckpointError, match=r"has the MobilenetV2 scope.*depth multiplier"):
        ckpt.check_backbone_match(model, kept, report, 0.9, "train.init_checkpoint=half")


def broken(tmp_path, how):
    """A real checkpoint, then damaged as copies and downloads get damaged."""
    folder = tmp_path / how
    folder.mkdir()
    write_tf1_checkpoint(folder / "model.ckpt-1", "deeplabv3_mnv2_pascal_train_aug_ckpt30000")
    (data,) = folder.glob("*.data-*")
    if how == "no_data_shard":
        data.unlink()
    elif how == "cut_short":
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    elif how == "flipped_byte":
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        data.write_bytes(bytes(raw))
    elif how == "garbage_index":
        (folder / "model.ckpt-1.index").write_bytes(b"<html>404 Not Found</html>")
    return folder


@pytest.mark.parametrize("how", ["no_data_shard", "cut_short", "flipped_byte", "garbage_index"])
def test_unreadable_partial_or_corrupt_checkpoints_name_the_file(tmp_path, how):
    folder = broken(tmp_path, how)
    with pytest.raises(ckpt.CheckpointError) as err:
        ckpt.read_tf1_checkpoint(folder)
    message = str(err.value)
    assert str(folder / "model.ckpt-1") in message and "unreadable, partial or corrupt" in message
    assert "train.init_checkpoint=null" in message and "\n" not in message


def test_a_cut_short_tarball_names_the_archive_and_leaves_no_half_folder(tmp_path):
    archive = model_zoo_tarball(tmp_path, "deeplabv3_mnv2", 1)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    for _ in range(2):  # the second try must not find a half-unpacked folder and use it
        with pytest.raises(ckpt.CheckpointError, match=r"deeplabv3_mnv2.tar.gz: the archive"):
            ckpt.checkpoint_prefix(archive)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deeplabv3_mnv2.tar.gz", "zoo"]


def test_imagenet_weights_that_are_not_the_keras_file_name_it(tmp_path):
    path = tmp_path / "mobilenet_v2_no_top.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)  # an HDF5 signature, then nothing
    with pytest.raises(ckpt.CheckpointError, match=r"train.imagenet_weights=.*no_top.h5: not"):
        ckpt.import_keras_imagenet(
            build_model(ModelSettings.from_cfg(compose_config(LIP_HEAD))), path
        )
