"""Reading bib numbers: an off-the-shelf text reader behind one adapter, the rules that make
its lines bib numbers, the reading sources (whole photo, crops, parse filter), the fair
scoring against every bib of the photo, and the event index."""
