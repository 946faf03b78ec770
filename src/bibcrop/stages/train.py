"""``bibcrop train``: train (or resume) the configured DeepLab model, tracked in MLflow.

Reads ``cfg.train``, ``cfg.model``, ``cfg.dataset``, ``cfg.augment`` and ``cfg.mlflow``
once, into a :class:`~bibcrop.training.settings.TrainJob` (typed settings and resolved
paths) and the run's tracking (MLflow run, fingerprint of the inputs), and calls
:func:`bibcrop.training.trainer.train`.
Writes ``{train.output_dir}/model.keras`` and ``run.json`` (the MLflow run id that the
evaluate and export stages log into); step checkpoints live in ``train.backup_dir``.
The run's loss and learning rate per logged step go to ``{paths.reports}/train/curves.csv``
(a DVC plot, the same points as MLflow).
With ``train.evaluate=true`` the CLI runs the evaluate stage right after (a stage chain,
see :func:`bibcrop.cli.run_stage`), so each job of a sweep reports its val mIoU.
"""

from __future__ import annotations

from functools import partial

from omegaconf import DictConfig

from bibcrop import layout
from bibcrop.project import project_root, resolve
from bibcrop.tracking.lineage import data_hash, run_name
from bibcrop.training.fingerprint import fingerprint
from bibcrop.training.settings import TrainJob
from bibcrop.training.trainer import RunTracking, train

CURVES = ["train/loss", "train/lr"]


def run_tracking(cfg: DictConfig) -> RunTracking:
    """The MLflow run (params and lineage from ``cfg``) and the inputs' fingerprint."""
    from bibcrop.tracking import settings_from, tracked_run

    return RunTracking(
        open_run=partial(
            tracked_run, cfg, run_name=run_name(cfg, "train"), tags={"stage": "train"}
        ),
        inputs=lambda: fingerprint(cfg, data_hash(cfg, project_root())),
        log_every_n_steps=settings_from(cfg).log_every_n_steps,
    )


def run(cfg: DictConfig) -> dict:
    from bibcrop.tracking import write_history_csv

    result = train(TrainJob.from_cfg(cfg), run_tracking(cfg))
    if result.get("run_id"):  # the chief (a non-chief worker tracks nothing)
        curves = resolve(cfg.paths.reports) / layout.TRAIN_CURVES
        write_history_csv(curves, CURVES, run_id=result["run_id"])
    print(
        f"train: step {result['global_step']}/{cfg.train.steps} "
        f"(resumed from {result['resumed_from_step']}), run {result['run_id']}"
    )
    return result
