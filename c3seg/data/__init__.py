"""Datasets: one in-memory index type (`SegData`) that every on-disk format loads into."""
