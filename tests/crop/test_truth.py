import numpy as np
from PIL import Image

from bibcrop.crop.roi import RoiSettings
from bibcrop.crop.truth import truth_records
from bibcrop.data.lip_dataset import CLASS_IDS as C


def test_truth_maps_measure_bib_retention_without_a_model(tmp_path):
    labels = np.zeros((40, 60), np.uint8)
    labels[5:20, 10:20] = C["UpperClothes"]
    labels[20:35, 10:20] = C["Pants"]
    Image.fromarray(labels).save(tmp_path / "p.png")
    bibs = {"p.jpg": [(12, 8, 18, 14, "bib_number"), (40, 5, 50, 10, "bib_number")]}
    roi = RoiSettings(mode="per_runner", margin_pct=0, min_component_frac=0.001, min_area_frac=0)
    (record,) = truth_records(tmp_path, bibs, roi)
    assert record["outcome"] == "cropped" and record["bibs"] == 2 and record["bibs_retained"] == 1
