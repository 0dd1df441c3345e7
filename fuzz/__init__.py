"""Fuzz targets for the photo and shard readers; run them with fuzz/run.py."""
