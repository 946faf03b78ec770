"""Race photos -> torso+pants crops with their bib boxes, from the registered model."""
