"""DeepLabv3+ in Keras 3: backbones with named features, ASPP, decoder and one builder."""
