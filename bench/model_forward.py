"""CPU forward time at 513x513 for both backbones, with parameter and multiply-add counts.

Multiply-adds are counted analytically from each conv layer's output size (what the
DeepLab paper reports): MobileNetV2 DeepLabv3 (PASCAL layout) is published at 2.75B,
Xception-65 DeepLabv3+ at about 54B, both at 513x513.

    python bench/model_forward.py [--size 513] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import machine, report, today, versions

CONFIGS = {
    "mobilenetv2 DeepLabv3 (PASCAL layout)": [
        "model/head=deeplabv3_pascal",
        "dataset.num_classes=21",
    ],
    "mobilenetv2 DeepLabv3+ (LIP default)": [],
    "xception65 DeepLabv3+": ["model/backbone=xception65"],
}


def multiply_adds(model, size: int) -> int:
    """Sum over conv layers of output pixels x kernel taps x in x out (depthwise: x in)."""
    import keras

    probe = keras.Model(model.inputs[0], [layer.output for layer in _convs(model)])
    outputs = probe(np.zeros((1, size, size, 3), "float32"))
    total = 0
    for layer, out in zip(_convs(model), outputs, strict=True):
        pixels = int(np.prod(out.shape[1:3]))
        kh, kw, cin = layer.kernel.shape[:3]
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            total += pixels * kh * kw * cin
        else:
            total += pixels * kh * kw * cin * layer.kernel.shape[3]
    return total


def _convs(model):
    import keras

    kinds = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
    return [layer for layer in model.layers if isinstance(layer, kinds)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=513)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from bibcrop.config import compose_config
    from bibcrop.model import ModelSettings, build_model

    rows = []
    x = np.random.default_rng(0).uniform(0, 255, (1, args.size, args.size, 3)).astype("float32")
    for name, overrides in CONFIGS.items():
        model = build_model(ModelSettings.from_cfg(compose_config(overrides)))
        model.predict_on_batch(x)  # trace / warm up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            model.predict_on_batch(x)
            times.append(time.perf_counter() - start)
        madds = multiply_adds(model, args.size)
        rows.append([name, f"{model.count_params():,}", f"{madds / 1e9:.2f}B",
                     f"{1000 * np.median(times):.0f}"])  # fmt: skip
    context = f"{today()}, {machine()}, {versions()}, input {args.size}x{args.size}, batch 1"
    report(
        "model_forward",
        context,
        ["model", "params", "multiply-adds", "CPU forward ms (median)"],
        rows,
    )


if __name__ == "__main__":
    main()
