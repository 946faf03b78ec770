"""Config values and input paths checked before a stage imports TensorFlow.

``bibcrop <stage>`` composes the config, then runs :func:`precheck` for that stage and
only then imports the stage (TensorFlow takes 5-10 s to import). A wrong choice, a
missing folder or file is a :class:`ConfigError`: one line naming the key, the value as
written (and where it resolves), what is wrong and the fix. The CLI prints it without a
traceback and exits 2. Nothing here imports TensorFlow or Keras.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from bibcrop.project import resolve


class ConfigError(ValueError):
    """A config value that cannot work: ``key``, ``value``, the problem and the fix."""

    def __init__(self, key: str, value, problem: str, fix: str):
        self.key, self.value = key, value
        super().__init__(f"{key}={value}: {problem}; {fix}")


def _value(cfg: DictConfig, key: str):
    return OmegaConf.select(cfg, key, default=None)


def _shown(cfg: DictConfig, key: str) -> str:
    value = _value(cfg, key)
    path = resolve(value)
    return str(value) if str(path) == str(value) else f"{value} ({path})"


def _invalid(cfg: DictConfig, key: str, problem: str, fix: str) -> ConfigError:
    """The error for ``key`` as written in ``cfg`` (and where it resolves): raise it."""
    return ConfigError(key, _shown(cfg, key), problem, fix)


def choice(cfg: DictConfig, key: str, choices) -> None:
    value = _value(cfg, key)
    if value not in choices:
        raise ConfigError(key, value, "not a known choice", f"choose one of {', '.join(choices)}")


def _required_path(cfg: DictConfig, key: str, fix: str) -> Path:
    """``key``'s value resolved against the project root; a null value is an error."""
    value = _value(cfg, key)
    if value is None:
        raise ConfigError(key, "null", "not set", fix)
    return resolve(value)


def folder(cfg: DictConfig, key: str, fix: str) -> Path:
    path = _required_path(cfg, key, fix)
    if not path.is_dir():
        problem = "is a file, not a folder" if path.exists() else "no such folder"
        raise _invalid(cfg, key, problem, fix)
    return path


def file(cfg: DictConfig, key: str, fix: str) -> Path:
    """A path that must name an existing file."""
    path = _required_path(cfg, key, fix)
    if not path.is_file():
        problem = "is a folder, not a file" if path.is_dir() else "no such file"
        raise _invalid(cfg, key, problem, fix)
    return path


def optional_file(cfg: DictConfig, key: str, fix: str, folder_ok: bool = False) -> None:
    """A path that may be null; when set, it must exist (a file, or a folder if allowed)."""
    value = _value(cfg, key)
    if not value:
        return
    path = resolve(value)
    if path.is_file() or (folder_ok and path.is_dir()):
        return
    if folder_ok and Path(f"{path}.index").is_file():  # a TF1 checkpoint prefix
        return
    problem = "is a folder, not a file" if path.is_dir() else "no such file"
    raise _invalid(cfg, key, problem, fix)


ENGINES = ("local", "ray")


def _number(cfg: DictConfig, key: str, low: float, fix: str, allowed=()) -> None:
    value = _value(cfg, key)
    if value in allowed:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
        raise ConfigError(key, value, f"not a number >= {low}", fix)


def ray_section(cfg: DictConfig) -> None:
    """The ``ray.*`` settings of a photo stage's Ray engine (``<stage>.engine=ray``)."""
    _number(cfg, "ray.actors", 0, "give a whole number of actors (0 = one per CPU)")
    _number(cfg, "ray.cpus_per_actor", 0.01, "give the CPUs to reserve per actor, e.g. 1")
    _number(cfg, "ray.gpus_per_actor", 0, "give auto or the GPUs per actor", ("auto", None))
    _number(cfg, "ray.batch_size", 1, "give photos per call, or null", (None,))
    _number(cfg, "ray.task_retries", 0, "give how often a batch is retried, e.g. 3")


def tfrecord_folder(cfg: DictConfig) -> None:
    """``paths.tfrecords`` holds ``manifest.json`` or DeepLab-converter shards."""
    from bibcrop.data.tfrecords import SHARD_PATTERN

    path = folder(cfg, "paths.tfrecords", "run `bibcrop tfrecords` (or `dvc repro tfrecords`)")
    if (path / "manifest.json").is_file():
        return
    if any(SHARD_PATTERN.match(p.name) for p in path.iterdir()):
        return
    raise _invalid(
        cfg,
        "paths.tfrecords",
        "no manifest.json and no {split}-NNNNN-of-NNNNN.tfrecord shards",
        "run `bibcrop tfrecords` (or `dvc repro tfrecords`), or point it at DeepLab shards",
    )


def _crop(cfg: DictConfig) -> None:
    from bibcrop.crop.annotations import POLICIES
    from bibcrop.crop.roi import MODES
    from bibcrop.inference.backends import BACKENDS

    choice(cfg, "crop.mode", MODES)
    choice(cfg, "crop.cut_boxes", POLICIES)
    choice(cfg, "crop.backend", BACKENDS)
    choice(cfg, "crop.engine", ENGINES)
    if _value(cfg, "crop.engine") == "ray":
        ray_section(cfg)
    inputs = folder(cfg, "crop.input_dir", "point it at the folder of race photos")
    optional_file(cfg, "crop.annotations", "point it at the bib CSV, or set it to null")
    optional_file(cfg, "crop.model_path", "point it at a .keras file, or set it to null")
    output = resolve(_value(cfg, "crop.output_dir"))
    if output.resolve().is_relative_to(inputs.resolve()):
        raise _invalid(
            cfg,
            "crop.output_dir",
            f"inside crop.input_dir={_value(cfg, 'crop.input_dir')}",
            "choose an output folder outside the input (crops would be read back as photos)",
        )


def _read(cfg: DictConfig) -> None:
    from bibcrop.crop.roi import MODES
    from bibcrop.read.reader import READERS
    from bibcrop.read.sources import SOURCES

    choice(cfg, "read.reader", READERS)
    choice(cfg, "read.engine", ENGINES)
    if _value(cfg, "read.engine") == "ray":
        ray_section(cfg)
    for key, known in (("read.sources", SOURCES), ("read.modes", MODES),
                       ("read.crops.modes", MODES)):  # fmt: skip
        values = _value(cfg, key)
        bad = [v for v in (values or []) if v not in known]
        if (not values and key != "read.crops.modes") or bad:
            raise ConfigError(key, values, f"unknown {bad}" if bad else "empty",
                              f"a list of {', '.join(known)}")  # fmt: skip
    folder(cfg, "read.input_dir", "point it at the folder of race photos (crop.input_dir)")
    optional_file(cfg, "read.truth", "point it at a CSV with filename,number, or set it to null")
    optional_file(cfg, "read.start_list", "point it at the start list, or set it to null")
    rules = _value(cfg, "read.rules")
    if not 1 <= int(rules.min_digits) <= int(rules.max_digits):
        raise ConfigError("read.rules.min_digits", rules.min_digits,
                          f"must be >= 1 and <= read.rules.max_digits={rules.max_digits}",
                          "give the event's digit count range")  # fmt: skip


def _tune_gate(cfg: DictConfig) -> None:
    from bibcrop.inference.backends import BACKENDS

    choice(cfg, "crop.backend", BACKENDS)
    folder(cfg, "tune_gate.photos", "point it at the folder of annotated photos")
    optional_file(cfg, "tune_gate.numbers", "point it at a filename,number CSV, or set it to null")
    if not _value(cfg, "tune_gate.numbers"):
        file(cfg, "tune_gate.annotations", "point it at the bib CSV (filename,x_min,...,class)")
    else:
        optional_file(cfg, "tune_gate.annotations", "point it at the bib CSV, or set it to null")
    optional_file(cfg, "crop.model_path", "point it at a .keras file, or set it to null")
    holdout = _value(cfg, "tune_gate.holdout")
    if not 0.0 <= float(holdout) < 1.0:
        raise _invalid(cfg, "tune_gate.holdout", "not a share", "choose a share in [0, 1)")


def crop_truth(cfg: DictConfig) -> tuple[Path, Path]:
    """``crop.truth_labels`` (a folder of truth label maps) and ``crop.annotations`` (the
    bib CSV) for ``bibcrop crop-truth``: both must be set and exist."""
    labels = folder(
        cfg,
        "crop.truth_labels",
        "point it at the photos' truth label maps <stem>.png "
        "(`bibcrop synthesize` writes them to ${paths.synthetic}/race/labels)",
    )
    bibs = file(cfg, "crop.annotations", "point it at the bib CSV")
    return labels, bibs


def _extract(cfg: DictConfig) -> None:
    folder(
        cfg,
        "dataset.source_dir",
        "run `bibcrop synthesize`, or put the dataset's zips or extracted folders there",
    )


def _tfrecords(cfg: DictConfig) -> None:
    extracted = folder(cfg, "paths.extracted", "run `bibcrop extract` first")
    for split in _value(cfg, "dataset.splits") or []:
        if not (extracted / f"{split}_id.txt").is_file():
            raise _invalid(
                cfg,
                "paths.extracted",
                f"has no {split}_id.txt (split {split!r} of dataset.splits)",
                "run `bibcrop extract` first, or check dataset.splits",
            )


def _train(cfg: DictConfig) -> None:
    tfrecord_folder(cfg)
    fix = "put the file there (nothing is downloaded), or set it to null to train from scratch"
    optional_file(cfg, "train.init_checkpoint", fix, folder_ok=True)
    optional_file(cfg, "train.imagenet_weights", fix)
    class_weights(cfg)
    ema_momentum(cfg)
    if _value(cfg, "train.evaluate"):  # sweeps score val after training with evaluate.*
        eval_scales(cfg)


def ema_momentum(cfg: DictConfig) -> None:
    """``train.ema_momentum``: null or a decay strictly between 0 and 1."""
    value = _value(cfg, "train.ema_momentum")
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ConfigError(
            "train.ema_momentum",
            value,
            "is not a decay in (0, 1)",
            "use null (no weight averaging) or a decay such as 0.99",
        )


def eval_scales(cfg: DictConfig) -> tuple[float, ...]:
    """``evaluate.scales``: a non-empty list of positive factors (DeepLab's ``eval_scales``)."""
    value = _value(cfg, "evaluate.scales")
    scales: tuple = ()
    if value is not None and not isinstance(value, str | int | float):
        try:
            scales = tuple(float(v) for v in value if not isinstance(v, bool))
        except (TypeError, ValueError):
            scales = ()
        if len(scales) != len(value):
            scales = ()
    if not scales or min(scales) <= 0:
        shown = value if value is None or isinstance(value, str | int | float) else list(value)
        raise ConfigError(
            "evaluate.scales",
            shown,
            "is not a list of positive scale factors",
            "use e.g. [1.0] (single scale) or [0.75, 1.0, 1.25, 1.5] (DeepLab's multi-scale)",
        )
    return scales


def class_weights(cfg: DictConfig) -> None:
    """``train.class_weights``: null, ``dataset.num_classes`` numbers, or a scheme's name."""
    from bibcrop.training.class_weights import SCHEMES

    weights = _value(cfg, "train.class_weights")
    if weights is None or isinstance(weights, str) and weights in SCHEMES:
        return
    count = int(cfg.dataset.num_classes)
    if isinstance(weights, str) or len(weights) != count:
        shown = weights if isinstance(weights, str) else list(weights)
        raise ConfigError(
            "train.class_weights",
            shown,
            "neither a scheme nor one weight per class",
            f"use null, {count} numbers (dataset.num_classes), or one of {', '.join(SCHEMES)}",
        )


def eval_crop_size(cfg: DictConfig) -> str | tuple[int, int] | None:
    """``evaluate.eval_crop_size``: ``auto``, null or [h, w] positive pixels, as given."""
    value = _value(cfg, "evaluate.eval_crop_size")
    if value is None or value == "auto":
        return value
    box = ()
    if not isinstance(value, str):
        try:
            box = tuple(int(v) for v in value)
        except (TypeError, ValueError):
            box = ()
    if len(box) != 2 or min(box) < 1:
        raise ConfigError(
            "evaluate.eval_crop_size",
            value if isinstance(value, str) else list(value),
            "is not auto, null or [height, width]",
            "use auto (the smallest box holding every val image), null (each image at its "
            "own size) or two positive pixel sizes such as [513, 513]",
        )
    return box


def _evaluate(cfg: DictConfig) -> None:
    tfrecord_folder(cfg)
    eval_crop_size(cfg)
    eval_scales(cfg)


CHECKS = {
    "extract": _extract,
    "tfrecords": _tfrecords,
    "validate": tfrecord_folder,
    "train": _train,
    "evaluate": _evaluate,
    "manifest": tfrecord_folder,
    "crop": _crop,
    "crop-truth": crop_truth,
    "read": _read,
    "tune-gate": _tune_gate,
}


def _leaves(node, prefix: str = ""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, node


def _parses_as(value: str, kind: type) -> bool:
    if kind is bool:
        return value.lower() in ("true", "false")
    try:
        kind(value)
    except ValueError:
        return False
    return True


def value_types(cfg: DictConfig, defaults: DictConfig) -> None:
    """A number or a boolean in ``conf/`` given as words (``train.steps=ten``) is refused.

    ``defaults`` is the composition of ``conf/`` without overrides; only keys present in
    both are compared, and only a string where the default is a number or a boolean (null
    <-> value and int <-> float changes are legitimate).
    """
    given = dict(_leaves(OmegaConf.to_container(cfg, resolve=False)))
    for key, default in _leaves(OmegaConf.to_container(defaults, resolve=False)):
        value = given.get(key)
        kind = type(default)
        typed = kind in (int, float, bool) and isinstance(value, str) and "${" not in value
        if typed and not _parses_as(value, kind):
            words = {int: "an integer", float: "a number", bool: "true or false"}[kind]
            raise ConfigError(key, value, f"expected {words} (conf/ has {default})",
                              f"give {key} {words}")  # fmt: skip


def precheck(stage: str, cfg: DictConfig, defaults: DictConfig | None = None) -> None:
    """Raise :class:`ConfigError` for the first config value ``stage`` cannot run with.

    ``defaults``: the composition of ``conf/`` with no overrides, for :func:`value_types`
    (composed before Hydra's app starts: Hydra composes once per process at a time).
    """
    if defaults is not None:
        value_types(cfg, defaults)
    check = CHECKS.get(stage)
    if check is not None:
        check(cfg)
