"""The crop as a service: the segmenter plus ``crop.*`` settings as one MLflow pyfunc model.

Registered by the export stage as ``mlflow.cropper_model_name`` (``bib-cropper``) with the
segmenter version's alias, so ``models:/bib-cropper@champion`` wraps the champion segmenter.
The model folder holds the segmenter's ``.keras`` (the ``keras`` flavour, as the segmenter's
own version) and ``serving.json`` (the crop settings); its ``python_function`` flavour loads
this module (``loader_module``, no pickled code, ``bibcrop`` shipped as ``code_paths``).

Input: a DataFrame, one row per photo: ``image`` (binary: the encoded JPEG/PNG file; JSON
clients send it base64-encoded, as MLflow's scoring server expects), optional ``name``
(string, echoed back as ``photo``) and optional ``bibs`` (string: JSON
``[[x0, y0, x1, y1, class], ...]`` in photo pixels after EXIF orientation).
Output: a DataFrame, one row per photo, in input order: ``photo``, ``outcome``
(``cropped`` | ``intact`` | ``error``), ``reasons`` (list of codes), ``width``, ``height``,
``boxes`` (JSON ``[[x0, y0, x1, y1], ...]``, max exclusive), ``bibs`` (JSON: per box its bibs
remapped into the crop's frame), ``cut_bibs`` (per box), ``bibs_retained``,
``intact_bibs`` (JSON: an intact photo's bibs, in its own frame), ``invalid_bibs`` (JSON:
boxes refused against the photo's size, with the problem; ``file`` is ``bibs`` and ``line``
the box's 1-based position in the row's list), ``error`` (the message; "" unless
``error``; an unreadable photo has width and height 0), ``domain_score`` (the photo's
domain check score, :mod:`bibcrop.crop.domain`; null without a kept runner or a check; a
photo above the model's threshold is ``intact`` with the reason ``out_of_domain``).
Nested lists travel as JSON strings, so the output schema is one ``mlflow.pyfunc.spark_udf``
can return (primitives and arrays of them). These are the crop stage's records for the
same photo and settings (the per-photo code is :func:`bibcrop.crop.batch.plan_photo`; no
crops are written).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from bibcrop.crop.annotations import BibRow
from bibcrop.crop.batch import CropJob, parse_batch, plan_photo
from bibcrop.crop.domain import DomainCheck
from bibcrop.crop.gate import GateSettings
from bibcrop.crop.photos import PhotoError, load_full, load_reduced
from bibcrop.crop.roi import RoiSettings
from bibcrop.inference.backends import make_forward
from bibcrop.inference.loading import Segmenter, read_domain
from bibcrop.inference.pyfunc import read_data

COLUMNS = ("photo", "outcome", "reasons", "width", "height", "boxes", "bibs", "cut_bibs",
           "bibs_retained", "intact_bibs", "invalid_bibs", "error", "domain_score")  # fmt: skip


def service_settings(
    job: CropJob, max_side: int, backend: str = "keras", domain_check: bool = True
) -> dict:
    """The JSON stored with the model: what :func:`job_from` rebuilds on load
    (``domain_check``: apply the domain check stored beside the model, when it has one)."""
    return {
        "max_side": int(max_side),
        "backend": str(backend),
        "roi": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(job.roi).items()},
        "cut_policy": job.cut_policy,
        "filter_cut": job.filter_cut,
        "refine": job.refine,
        "domain_check": bool(domain_check),  # the check itself: DOMAIN_FILE beside
    }


def job_from(settings: dict) -> CropJob:
    """The crop rules of a stored model (its folders unused: the service writes no files)."""
    roi = {k: tuple(v) if isinstance(v, list) else v for k, v in settings["roi"].items()}
    roi["gate"] = GateSettings.from_cfg(roi.get("gate"))  # the stage's gate, from its dict
    return CropJob(
        input_dir=Path(),
        output_dir=Path(),
        roi=RoiSettings(**roi),
        bibs={},
        cut_policy=settings["cut_policy"],
        filter_cut=bool(settings["filter_cut"]),
        refine=bool(settings["refine"]),
    )


def signature():
    """image (binary), name and bibs (optional strings) -> the per-photo columns."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, Schema

    return ModelSignature(
        inputs=Schema(
            [
                ColSpec("binary", "image"),
                ColSpec("string", "name", required=False),
                ColSpec("string", "bibs", required=False),
            ]
        ),  # fmt: skip
        outputs=Schema(
            [
                ColSpec("string", "photo"),
                ColSpec("string", "outcome"),
                ColSpec(Array("string"), "reasons"),
                ColSpec("long", "width"),
                ColSpec("long", "height"),
                ColSpec("string", "boxes"),
                ColSpec("string", "bibs"),
                ColSpec(Array("long"), "cut_bibs"),
                ColSpec("long", "bibs_retained"),
                ColSpec("string", "error", required=False),
                ColSpec("double", "domain_score", required=False),
            ]
        ),  # fmt: skip
    )


def input_example(image: bytes):
    import pandas as pd

    return pd.DataFrame({"image": [image], "name": ["example.jpg"], "bibs": ["[]"]})


def save(
    path: str | Path, keras_file: str | Path, settings: dict, example_image: bytes, beside=()
) -> Path:
    """Write the crop service's MLflow model folder (see :func:`bibcrop.inference.pyfunc.save`;
    ``beside``: the model's domain check file, when it has one)."""
    from bibcrop.inference.pyfunc import save as save_model

    return save_model(
        path, keras_file, settings, loader_module=__name__,
        example=input_example(example_image), model_signature=signature(), beside=beside,
    )  # fmt: skip


def _bibs(raw, row: int, name: str) -> list[BibRow]:
    if raw is None or (isinstance(raw, float) and np.isnan(raw)) or raw == "":
        return []
    try:
        boxes = json.loads(raw) if isinstance(raw, str) else raw
        return [
            BibRow(name, (int(b[0]), int(b[1]), int(b[2]), int(b[3])), str(b[4]), "bibs", k)
            for k, b in enumerate(boxes, start=1)
        ]
    except (ValueError, TypeError, IndexError) as err:
        raise ValueError(
            f"row {row}: bibs={raw!r} is not JSON [[x0, y0, x1, y1, class], ...] ({err}): "
            "send an empty string or omit the column when a photo has no bibs"
        ) from None


class CropService:
    """What ``mlflow.pyfunc.load_model("models:/bib-cropper@...")`` wraps."""

    def __init__(self, segmenter: Segmenter, job: CropJob):
        self.segmenter = segmenter
        self.job = job

    def decode(self, image: bytes, name: str):
        """(reduced, full) pixels of an encoded photo, or its ``error`` record."""
        try:
            return load_reduced(image, self.segmenter.max_side), load_full(image)
        except PhotoError as err:
            message = str(err).replace(f"<{len(image)} bytes>", name)
            return {"photo": name, "outcome": "error", "reasons": [err.reason],
                    "error": message, "crops": []}  # fmt: skip

    def crop(self, images: list[bytes], bibs: list[list[BibRow]], names: list[str]) -> list:
        """The crop stage's records (minus file names) for encoded photos, in order; the
        readable ones are inferred together, batched where sizes agree, as the stage does."""
        decoded = [self.decode(image, name) for image, name in zip(images, names, strict=True)]
        good = [i for i, d in enumerate(decoded) if isinstance(d, tuple)]
        parsed = parse_batch(self.segmenter, [decoded[i][0] for i in good], self.job)
        parses = dict(zip(good, parsed, strict=True))
        records = []
        for index, item in enumerate(decoded):
            if index not in parses:
                records.append(item)
                continue
            labels, confidence, domain_map = parses[index]  # what the stage's gate sees
            plan, _ = plan_photo(self.segmenter, item[1], labels, bibs[index], self.job,
                                 confidence, domain_map)  # fmt: skip
            records.append({"photo": names[index], **plan})
        return records

    def predict(self, model_input, params=None):
        """DataFrame in, DataFrame out (see the module doc). A bad photo gives an ``error``
        row, never a failed request; malformed ``bibs`` raise ValueError naming the row."""
        import pandas as pd

        frame = pd.DataFrame(model_input)
        if "image" not in frame.columns:
            raise ValueError(
                f"the input has columns {list(frame.columns)}: send one row per photo with an "
                "'image' column (the encoded JPEG/PNG bytes; base64 in JSON)"
            )
        rows = frame.to_dict("records")
        images = [_image_bytes(row["image"]) for row in rows]
        names = [
            str(row["name"]) if isinstance(row.get("name"), str) and row["name"] else f"image_{i}"
            for i, row in enumerate(rows)
        ]
        bibs = [_bibs(row.get("bibs"), i, names[i]) for i, row in enumerate(rows)]
        records = self.crop(images, bibs, names)
        return pd.DataFrame([_row(r) for r in records], columns=list(COLUMNS))


def _image_bytes(value) -> bytes:
    """Bytes as given; a str is taken as base64 (a client that skipped MLflow's decoding)."""
    if isinstance(value, str):
        import base64

        return base64.b64decode(value)
    return bytes(value)


def _row(record: dict) -> dict:
    crops = record.get("crops", [])
    return {
        "photo": record["photo"],
        "outcome": record["outcome"],
        "reasons": list(record.get("reasons", [])),
        "width": record.get("width", 0),
        "height": record.get("height", 0),
        "boxes": json.dumps([c["box"] for c in crops]),
        "bibs": json.dumps([c["bibs"] for c in crops]),
        "cut_bibs": [c["cut_bibs"] for c in crops],
        "bibs_retained": record.get("bibs_retained", 0),
        "intact_bibs": json.dumps(record.get("intact_bibs", [])),
        "invalid_bibs": json.dumps(record.get("invalid_bibs", [])),
        "error": record.get("error", ""),
        "domain_score": (record.get("domain") or {}).get("score"),
    }


def _load_pyfunc(data_path: str) -> CropService:
    """MLflow's entry point for the ``python_function`` flavour (``loader_module``)."""
    model, settings = read_data(data_path)
    segmenter = Segmenter(model, int(settings["max_side"]), domain=read_domain(Path(data_path)))
    cache = Path(tempfile.mkdtemp(prefix="bibcrop-litert-"))
    digest = _sha256(Path(data_path))
    segmenter.forward = make_forward(settings.get("backend", "keras"), model, cache, digest)
    job = job_from(settings)
    if settings.get("domain_check", True) and segmenter.domain is not None:
        job.domain = DomainCheck.from_dict(segmenter.domain)
    return CropService(segmenter, job)


def _sha256(folder: Path) -> str:
    """The LiteRT cache key of the model file (the cache is private to this load)."""
    import hashlib

    from bibcrop.inference.pyfunc import MODEL_FILE

    return hashlib.sha256((folder / MODEL_FILE).read_bytes()).hexdigest()
