"""Evaluation on the LIP protocol: confusion matrix, accuracies, IoUs, plots and overlays."""
