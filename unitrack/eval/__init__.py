"""Evaluation: online tracking over benchmarks, result files, and toolkit-faithful metrics.

Submodules are imported where used (``unitrack.eval.metrics``, ``.results``, ``.score``, ``.plots``, ...)
so that importing the package stays cheap and free of import cycles.
"""
