"""Reproducible load and speed measurements (run each as ``python -m benchmarks.<name>``)."""
