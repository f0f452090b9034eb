"""Studying many runs: depth sweeps, question sets, grading, statistics, estimates and plots."""
