"""The embedded default: synthetic LIP-format archives and race photos with bib boxes."""

from bibcrop.data.synthetic.archives import write_lip_archives
from bibcrop.data.synthetic.person import draw_person, draw_runner
from bibcrop.data.synthetic.race import write_race_photos

__all__ = ["draw_person", "draw_runner", "write_lip_archives", "write_race_photos"]
