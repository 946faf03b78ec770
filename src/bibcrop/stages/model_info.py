"""``bibcrop model-info [overrides] [--official-names]``: check a model config before training.

Prints JSON to stdout: total/trainable parameter counts, output stride, input scaling and
every weight as ``{name, shape}`` (plus ``official_name``, its DeepLab checkpoint tensor,
with ``--official-names``). Builds the model only; nothing is trained or read from disk.
"""

from __future__ import annotations

import json

from omegaconf import DictConfig, OmegaConf

from bibcrop.model import ModelSettings, build_model
from bibcrop.model.names import weight_table


def describe(cfg: DictConfig, official_names: bool = False) -> dict:
    model = build_model(ModelSettings.from_cfg(cfg))
    rows = weight_table(model)
    weights = []
    for row in rows:
        entry = {"name": row["name"], "shape": row["shape"]}
        if official_names:
            entry["official_name"] = row["official_name"]
        weights.append(entry)
    trainable = sum(int(v.numpy().size) for v in model.trainable_weights)
    return {
        "model": model.name,
        "backbone": cfg.model.backbone.name,
        "head": cfg.model.head.name,
        "num_classes": int(cfg.dataset.num_classes),
        "output_stride": int(cfg.model.head.output_stride),
        "atrous_rates": list(cfg.model.head.atrous_rates or []),
        "decoder_output_stride": cfg.model.head.decoder_output_stride,
        "total_params": int(model.count_params()),
        "trainable_params": trainable,
        "num_weights": len(weights),
        "weights": weights,
    }


def run(cfg: DictConfig) -> dict:
    official = bool(OmegaConf.select(cfg, "model_info.official_names", default=False))
    info = describe(cfg, official)
    print(json.dumps(info, indent=1))
    return {"total_params": info["total_params"]}
