"""``bibcrop train``: train (or resume) the configured DeepLab model, tracked in MLflow.

Reads ``cfg.train``, ``cfg.model``, ``cfg.dataset``, ``cfg.augment`` and ``cfg.mlflow``.
Writes ``{train.output_dir}/model.keras`` and ``run.json`` (the MLflow run id that the
evaluate and export stages log into); step checkpoints live in ``train.backup_dir``.
The run's loss and learning rate per logged step go to ``{paths.reports}/train/curves.csv``
(a DVC plot, the same points as MLflow).
With ``train.evaluate=true`` the CLI runs the evaluate stage right after (a stage chain,
see :func:`bibcrop.cli.run_stage`), so each job of a sweep reports its val mIoU.
"""

from __future__ import annotations

from omegaconf import DictConfig

from bibcrop import layout
from bibcrop.project import resolve
from bibcrop.training.trainer import train

CURVES = ["train/loss", "train/lr"]


def run(cfg: DictConfig) -> dict:
    from bibcrop.tracking import write_history_csv

    result = train(cfg)
    if result.get("run_id"):  # the chief (a non-chief worker tracks nothing)
        curves = resolve(cfg.paths.reports) / layout.TRAIN_CURVES
        write_history_csv(curves, CURVES, run_id=result["run_id"])
    print(
        f"train: step {result['global_step']}/{cfg.train.steps} "
        f"(resumed from {result['resumed_from_step']}), run {result['run_id']}"
    )
    return result
