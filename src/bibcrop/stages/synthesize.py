"""``bibcrop synthesize``: write the embedded default dataset (deterministic per seed).

Reads ``cfg.synth`` (seed, lip sizes and counts, race photo size and counts) and writes
``{paths.synthetic}/lip/`` (LIP's two archives) and ``{paths.synthetic}/race/`` (photos,
label maps, ``bibs.csv``).
"""

from __future__ import annotations

from omegaconf import DictConfig

from bibcrop.data.synthetic import write_lip_archives, write_race_photos
from bibcrop.project import resolve


def run(cfg: DictConfig) -> dict:
    root = resolve(cfg.paths.synthetic)
    seed = int(cfg.synth.seed)
    lip = write_lip_archives(root / "lip", cfg.synth.lip, seed)
    race = write_race_photos(root / "race", cfg.synth.race, seed)
    print(
        f"synthesize: LIP-format {lip['train']} train + {lip['val']} val images in {root / 'lip'}; "
        f"{race['photos']} race photos with {race['bibs']} bibs in {root / 'race'}"
    )
    return {"lip": lip, "race": race}
