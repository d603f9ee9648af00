"""Datasets in their native layouts, the synthetic generator, pair sampling and the DataModule."""
