"""Using a trained model: forward passes, maps, the Python API, prediction, export and the dense CRF."""
