"""One small adapter around an off-the-shelf text reader (OCR).

The read stage sees a reader as ``read(image) -> list[TextLine]``: lines of text with a
score and an axis-aligned box in the pixels of the image it was given. The default is
RapidOCR (PP-OCR detection + recognition, ONNX models shipped inside its wheel, run by
onnxruntime: nothing is downloaded). Another reader is one more class with the same
method, chosen by ``read.reader``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

READERS = ("rapidocr",)


@dataclass(frozen=True)
class TextLine:
    """One line of text a reader found: ``box`` (x0, y0, x1, y1) in pixels of the image read
    (float, x right, y down, max exclusive), ``score`` the recogniser's confidence in [0, 1]."""

    text: str
    score: float
    box: tuple[float, float, float, float]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


class ReaderError(RuntimeError):
    """The reader failed on one image; the read stage records it for that photo."""


class RapidOcrReader:
    """RapidOCR with its bundled PP-OCR models on onnxruntime (CPU).

    ``threads`` caps onnxruntime's intra-op threads (0: its default, every core).
    ``min_side`` is RapidOCR's ``Det.limit_side_len``: the detector's input is scaled so
    its short side is at least this (the library's default 736).
    Source: RapidAI/RapidOCR (``rapidocr`` on PyPI), PaddleOCR's PP-OCR models.
    """

    def __init__(self, threads: int = 0, min_side: int = 736):
        try:
            from rapidocr import RapidOCR
        except ImportError as err:  # pragma: no cover - a broken install
            raise RuntimeError(
                f"read.reader=rapidocr needs the rapidocr package ({err}); "
                "reinstall bibcrop: pip install -e ."
            ) from None
        params = {"Global.log_level": "error", "Det.limit_side_len": int(min_side)}
        if threads:
            params["EngineConfig.onnxruntime.intra_op_num_threads"] = int(threads)
        self._ocr = RapidOCR(params=params)
        # RapidOCR logs each call at INFO through its own logger; the stage reports instead
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)

    def read(self, image: np.ndarray) -> list[TextLine]:
        """Text lines of ``image`` (uint8 RGB [H, W, 3]); raises :class:`ReaderError`."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ReaderError(f"expected uint8 RGB [H, W, 3], got {image.dtype} {image.shape}")
        try:
            # RapidOCR takes OpenCV's channel order (BGR) for arrays
            result = self._ocr(np.ascontiguousarray(image[:, :, ::-1]))
        except Exception as err:  # the library raises anything; one photo, one error
            raise ReaderError(f"{type(err).__name__}: {err}") from err
        if result is None or result.boxes is None or result.txts is None:
            return []
        lines = []
        for points, text, score in zip(result.boxes, result.txts, result.scores, strict=True):
            pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
            box = (float(pts[:, 0].min()), float(pts[:, 1].min()),
                   float(pts[:, 0].max()), float(pts[:, 1].max()))  # fmt: skip
            lines.append(TextLine(str(text), float(score), box))
        return lines


def load_reader(name: str, threads: int = 0, min_side: int = 736):
    """The reader called ``name`` (one of :data:`READERS`); ValueError names the key."""
    if name == "rapidocr":
        return RapidOcrReader(threads=threads, min_side=min_side)
    raise ValueError(f"read.reader={name!r}: choose one of {', '.join(READERS)}")
