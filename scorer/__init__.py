"""dropscore scorer: batch scoring of CSV files with PyCaret models from a registry."""

__version__ = "0.1.0"
