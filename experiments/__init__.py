"""Experiment apps (absl) and their flag files."""
