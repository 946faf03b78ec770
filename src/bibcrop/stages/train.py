"""``bibcrop train``: train (or resume) the configured DeepLab model, tracked in MLflow.

Reads ``cfg.train``, ``cfg.model``, ``cfg.dataset``, ``cfg.augment`` and ``cfg.mlflow``.
Writes ``{train.output_dir}/model.keras`` and ``run.json`` (the MLflow run id that the
evaluate and export stages log into); step checkpoints live in ``train.backup_dir``.
Returns the key metric when there is one, so a Hydra sweep can report it.
"""

from __future__ import annotations

from omegaconf import DictConfig

from bibcrop.training.trainer import train


def run(cfg: DictConfig) -> dict:
    result = train(cfg)
    print(
        f"train: step {result['global_step']}/{cfg.train.steps} "
        f"(resumed from {result['resumed_from_step']}), run {result['run_id']}"
    )
    return result
