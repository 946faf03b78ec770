"""bibcrop: DeepLabv3+ human parsing on LIP, used to crop race photos to torso and pants."""

__version__ = "0.1.0"
