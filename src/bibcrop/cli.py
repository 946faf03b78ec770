"""``bibcrop <stage> [hydra overrides]``: one console script, every stage a Hydra app.

Each stage is a module under ``bibcrop.stages`` with ``run(cfg) -> dict``. By default the
config is composed from ``conf/config.yaml``; DVC stages pass ``-cd . -cn params`` so that
Hydra reads the composed ``params.yaml`` instead, which is how ``dvc exp run -S`` reaches
them. ``-m`` sweeps work as in any Hydra app.

Errors about the input or the config (see :func:`is_user_error`) print as two lines, the
message naming the key, the value and the fix, with no traceback unless ``-v`` /
``--verbose`` or ``HYDRA_FULL_ERROR=1`` asks for it; config values and input paths are
checked (:mod:`bibcrop.checks`) before the stage module, and TensorFlow, is imported.
Exit codes: 2 for a config value or path, 1 for an error while the stage ran.
"""

from __future__ import annotations

import importlib
import os
import re
import sys

from bibcrop import quiet

STAGES: dict[str, str] = {
    "synthesize": "bibcrop.stages.synthesize",
    "extract": "bibcrop.stages.extract",
    "tfrecords": "bibcrop.stages.tfrecords",
    "validate": "bibcrop.stages.validate",
    "manifest": "bibcrop.stages.manifest",
    "model-info": "bibcrop.stages.model_info",
    "train": "bibcrop.stages.train",
    "evaluate": "bibcrop.stages.evaluate",
    "export": "bibcrop.stages.export",
    "crop": "bibcrop.stages.crop",
    "crop-truth": "bibcrop.stages.crop_truth",
    "read": "bibcrop.stages.read",
    "tune-gate": "bibcrop.stages.tune_gate",
}

# Stage-specific flags that Hydra would not parse, turned into config overrides.
FLAGS: dict[str, str] = {
    "--official-names": "++model_info.official_names=true",
}


SWEEP_CALLBACK = "bibcrop.tracking.sweep.MlflowSweepCallback"

# Stages that import TensorFlow: imported with its start-up lines dropped (bibcrop.quiet).
# (read decodes photos as the crop stage does, with TensorFlow's JPEG decoder)
TF_STAGES = {"tfrecords", "validate", "model-info", "train", "evaluate", "export", "crop", "read",
             "tune-gate"}  # fmt: skip


_OVERRIDE = re.compile(r"^[~+]{0,2}[\w.@/-]+=")


def expand_overrides(args: list[str]) -> list[str]:
    """Arguments as Hydra should see them: an empty one dropped, and one that holds several
    overrides (``"train.steps=20 seed=1"``, what ``mlflow run -P overrides="..."`` passes as
    a single quoted word) split into them. A value with spaces stays whole unless every
    word of the argument is itself an override."""
    import shlex

    out = []
    for arg in args:
        if not arg.strip():
            continue
        try:
            words = shlex.split(arg)
        except ValueError:
            words = [arg]
        several = len(words) > 1 and all(_OVERRIDE.match(w) for w in words)
        out.extend([hydra_requoted(w) for w in words] if several else [arg])
    return out


def hydra_requoted(override: str) -> str:
    """``override`` quoted for Hydra when the shell's quotes around its value were taken
    off by the split (``crop.input_dir='/my photos'`` -> ``crop.input_dir="/my photos"``)."""
    from bibcrop.overrides import hydra_quoted, problem

    if problem(override) is None:
        return override
    key, value = override.split("=", 1)
    return hydra_quoted(key, value) or override


def _hydra_defaults(stage: str, args: list[str]) -> list[str]:
    """Where Hydra puts its run logs, unless the user said otherwise; logs go to stderr.

    A ``train -m`` sweep also gets the MLflow sweep callback (one parent run, a child per
    job) and per-job output, checkpoint, evaluation and report folders, so jobs never
    resume or overwrite each other (a job keeps its model, run.json, its newest two
    checkpoints, the evaluation and the curves; no Hydra config dumps).
    """
    defaults = {
        "hydra.run.dir": f"logs/hydra/{stage}/${{now:%Y-%m-%d_%H-%M-%S}}",
        "hydra.sweep.dir": f"logs/hydra/{stage}-multirun/${{now:%Y-%m-%d_%H-%M-%S}}",
        "hydra.job.name": stage.replace("-", "_"),
        "hydra.job_logging.handlers.console.stream": "ext://sys.stderr",
        # no .hydra/ config dumps beside the logs: overrides may carry secrets, and the
        # redacted config is recorded with every MLflow run instead
        "hydra.output_subdir": "null",
    }
    if stage == "train" and ("-m" in args or "--multirun" in args):
        job_dir = "${hydra:sweep.dir}/${hydra:job.num}"
        defaults["+hydra.callbacks.mlflow._target_"] = SWEEP_CALLBACK
        defaults["train.output_dir"] = f"{job_dir}/train"
        defaults["train.backup_dir"] = f"{job_dir}/backup"
        defaults["evaluate.output_dir"] = f"{job_dir}/eval"
        defaults["paths.reports"] = f"{job_dir}/reports"
    given = {a.split("=", 1)[0].lstrip("+") for a in args if "=" in a}
    return [f"{k}={v}" for k, v in defaults.items() if k.lstrip("+") not in given]


def refuse_targets(cfg, path: str = "") -> None:
    """Config values are plain: a ``_target_`` anywhere (a class path Hydra could
    instantiate, i.e. code chosen by config) is refused before any stage code runs."""
    from omegaconf import DictConfig, ListConfig

    if isinstance(cfg, DictConfig):
        for key in cfg:
            where = f"{path}.{key}" if path else str(key)
            if key == "_target_":
                raise ValueError(
                    f"{where}: bibcrop configs choose components by name, never by "
                    "`_target_` class paths; remove it (see conf/ for the names)"
                )
            refuse_targets(cfg._get_node(key), where)
    elif isinstance(cfg, ListConfig):
        for index, item in enumerate(cfg):
            refuse_targets(item, f"{path}[{index}]")


def _compose(args: list[str]) -> int:
    """Not a Hydra app itself: it runs the same composition DVC runs and writes params.yaml.

    Overrides are kept in ``conf/local/local.yaml`` (merged with those already there) so
    that ``dvc exp run`` and ``dvc repro`` see them too; ``--reset`` removes them.
    """
    from bibcrop.config import (
        keep_overrides,
        local_file,
        local_overrides,
        reset_overrides,
        write_params,
    )

    reset = "--reset" in args
    overrides = [a for a in args if a != "--reset"]
    if refused_override("compose", overrides):
        return 2
    try:
        if reset and reset_overrides():
            print(f"removed {local_file()}")
        kept = keep_overrides(overrides) if overrides else local_overrides()
        path = write_params([])
    except Exception as err:  # noqa: BLE001  (an override that does not compose)
        if not is_user_error(err) and "HYDRA_FULL_ERROR" not in os.environ:
            raise
        report_error("compose", err)
        return 2
    where = f"; kept in {local_file().relative_to(path.parent)}" if kept else ""
    print(f"wrote {path.name} from conf/ (overrides: {' '.join(kept) or 'none'}{where})")
    return 0


def usage() -> str:
    names = "\n  ".join(sorted([*STAGES, "compose", "server", "summary", "relocate-store", "find"]))
    return (
        "usage: bibcrop <stage> [hydra overrides] [-m] [-v|--verbose]\n\n"
        "-v/--verbose (or BIBCROP_VERBOSE=1): tracebacks and every library log line\n\n"
        f"stages:\n  {names}\n"
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = quiet.verbose()
    if not argv or argv[0] in {"-h", "--help", "help"}:
        sys.stdout.write(usage())
        return 0
    stage, args = argv[0], expand_overrides(argv[1:])
    if stage == "compose":
        return _compose(args)
    if stage in ("server", "summary", "relocate-store", "find"):
        return _plain_command(stage, args)
    if stage not in STAGES:
        sys.stderr.write(f"bibcrop: unknown stage {stage!r}\n\n{usage()}")
        return 2
    verbose = verbose or any(a in VERBOSE for a in args)
    verbose = verbose or os.environ.get("HYDRA_FULL_ERROR") == "1"
    args = [FLAGS.get(a, a) for a in args if a not in VERBOSE]
    if verbose:
        os.environ["HYDRA_FULL_ERROR"] = "1"
    quiet.set_environment(verbose)  # before TensorFlow, MLflow or a worker process starts
    if refused_override(stage, args):
        return 2
    return _run_hydra(stage, args + _hydra_defaults(stage, args), verbose)


def refused_override(stage: str, args: list[str]) -> bool:
    """Report an override Hydra's grammar refuses (the override, the quoted form that
    works) in the two-line form; True when there was one."""
    from bibcrop.overrides import first_problem

    found = first_problem(args)
    if found:
        report_error(stage, ValueError(found))
    return found is not None


def _relocate_store(args: list[str]) -> int:
    """``bibcrop relocate-store [--from URI] [overrides]``: a moved project's local MLflow
    store pointed at its own ``mlruns/`` again (see :mod:`bibcrop.tracking.relocate`)."""
    import argparse

    from bibcrop.config import compose_config
    from bibcrop.tracking.relocate import relocate_configured
    from bibcrop.tracking.settings import settings_from

    parser = argparse.ArgumentParser(
        prog="bibcrop relocate-store",
        description="Point a moved project's MLflow store at its own artifact folder.",
    )
    parser.add_argument("--from", dest="old", help="the old artifact root (a file:// URI)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides (the mlflow group)")
    ns = parser.parse_args(args)
    for line in relocate_configured(settings_from(compose_config(ns.overrides)), ns.old):
        print(line)
    return 0


def _find(args: list[str]) -> int:
    """``bibcrop find <number> [--index CSV]``: a runner's photos (and crops) from the event
    index the read stage wrote (``{paths.reports}/read/index.csv`` of params.yaml)."""
    import argparse

    from bibcrop.config import read_params
    from bibcrop.project import project_root
    from bibcrop.read import READ_INDEX
    from bibcrop.read.index import find, read_index

    parser = argparse.ArgumentParser(
        prog="bibcrop find", description="List the photos (and crops) of a bib number."
    )
    parser.add_argument("number", help="the bib number, digits")
    parser.add_argument("--index", help="an index.csv (default: the project's read stage's)")
    ns = parser.parse_args(args)
    if not ns.number.strip().isdigit():
        raise ValueError(
            f"bibcrop find {ns.number!r}: a bib number is digits, e.g. bibcrop find 1988"
        )
    if ns.index:
        path = ns.index
    else:
        root = project_root()
        path = root / read_params(root)["paths"]["reports"] / READ_INDEX
    found = find(read_index(path), ns.number)
    for e in found:
        crop = f"  crop {e.crop}" if e.crop else ""
        print(f"{e.number}  {e.photo}  box {list(e.box)}  score {e.score:.2f}  ({e.source}){crop}")
    photos = len({e.photo for e in found})
    print(f"{ns.number}: {photos} photo{'s' if photos != 1 else ''} in {path}")
    return 0 if found else 1


def _plain_command(stage: str, args: list[str]) -> int:
    """``server`` and ``summary``: not Hydra apps; their input errors are two lines too."""
    verbose = any(a in VERBOSE for a in args) or os.environ.get("HYDRA_FULL_ERROR") == "1"
    args = [a for a in args if a not in VERBOSE]
    try:
        if stage == "server":
            from bibcrop.tracking.server import main as server

            return server(args)
        if stage == "relocate-store":
            return _relocate_store(args)
        if stage == "find":
            return _find(args)
        from bibcrop.summary import main as summary

        return summary()
    except Exception as err:
        if verbose or not is_user_error(err):
            raise
        report_error(stage, err)
        return 2


# -v / --verbose: full tracebacks, as HYDRA_FULL_ERROR=1 gives
VERBOSE = ("-v", "--verbose")


def is_user_error(err: BaseException) -> bool:
    """Errors about the input or the config, shown as their message alone: bibcrop's,
    Hydra's and OmegaConf's own exception classes, and the ``ValueError`` / ``LookupError``
    / missing-file errors the stages raise with the key and the fix in the message.
    Anything else is a bug and keeps its traceback."""
    own = type(err).__module__.startswith(("bibcrop.", "hydra.", "omegaconf."))
    return own or isinstance(
        err, (ValueError, LookupError, FileNotFoundError, NotADirectoryError, IsADirectoryError)
    )


def report_error(stage: str, err: BaseException) -> None:
    """Two lines on stderr: the message (a multi-line one joined into one), then how to
    see the traceback."""
    message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    if "Config search path:" in lines:  # Hydra's missing-option error: the options, not paths
        lines = lines[: lines.index("Config search path:")]
    message = " ".join(lines[:8])
    sys.stderr.write(
        f"bibcrop {stage}: error: {message}\n"
        "(run with --verbose or HYDRA_FULL_ERROR=1 for the traceback)\n"
    )


def _defaults():
    """``conf/`` composed without overrides (the types precheck compares against), or None
    when it does not compose (Hydra's app then reports why)."""
    from bibcrop.config import compose_config

    try:
        return compose_config([])
    except Exception:  # noqa: BLE001  (reported by the app itself, with the file named)
        return None


def run_stage(stage: str, cfg) -> dict:
    """``stages.<stage>.run(cfg)``; ``train`` with ``train.evaluate=true`` chains the
    evaluate stage in the same job (its scores in the training run and in the returned
    dict, which a sweep's summary and parent run show per job)."""
    result = importlib.import_module(STAGES[stage]).run(cfg)
    if stage == "train" and cfg.train.get("evaluate", False):
        result = {**result, **importlib.import_module(STAGES["evaluate"]).run(cfg)}
    return result


def _run_hydra(stage: str, args: list[str], verbose: bool = False) -> int:
    import hydra

    from bibcrop.checks import ConfigError, precheck
    from bibcrop.config import CONFIG_NAME, conf_dir
    from bibcrop.project import ProjectNotFoundError

    try:
        config_path = str(conf_dir())
    except ProjectNotFoundError as err:
        report_error(stage, err)
        return 2
    defaults = _defaults()

    @hydra.main(version_base="1.3", config_path=config_path, config_name=CONFIG_NAME)
    def app(cfg):
        try:
            quiet.quiet_stage(verbose)  # after Hydra's logging setup, which it would undo
            refuse_targets(cfg)
            precheck(stage, cfg, defaults)  # config values and paths, before TensorFlow loads
            if stage in TF_STAGES:
                quiet.import_tensorflow()
            return run_stage(stage, cfg)
        except Exception as err:
            if verbose or not is_user_error(err):
                raise
            report_error(stage, err)
            raise SystemExit(2 if isinstance(err, ConfigError) else 1) from None

    saved = sys.argv
    sys.argv = [f"bibcrop {stage}", *args]
    try:
        app()
    except SystemExit as exc:  # Hydra exits 1 on a failed job; keep its code
        return int(exc.code or 0)
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
