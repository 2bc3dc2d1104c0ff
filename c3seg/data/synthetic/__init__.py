"""Generated data that needs no download: the built-in benchmark and the procedural pretraining corpus."""
