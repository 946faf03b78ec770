"""Reading bib numbers: an off-the-shelf text reader behind one adapter, the rules that make
its lines bib numbers, the reading sources (whole photo, crops, parse filter), the fair
scoring against every bib of the photo, and the event index."""

# {paths.reports}/: the read stage's files (dvc.yaml spells them out). Kept here, not
# in bibcrop.layout, which every training stage imports: a new name there reruns them all.
READ_REPORT = "read.json"  # scores per source, times, the default source's choice (a report)
READ_METRICS = "read_metrics.json"  # DVC metrics: numbers only
READ_INDEX = "read/index.csv"  # the event index: number -> photos, boxes, crops
