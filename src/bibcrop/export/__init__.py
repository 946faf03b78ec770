"""Export the trained model (Keras file, TF SavedModel) and publish it to the MLflow registry."""
