"""Dagster wiring for rasteret: partitioned collection, NDVI and statistics assets."""
