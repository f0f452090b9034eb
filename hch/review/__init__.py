"""Tools over recorded traces: replay, diff, statistics, accounting, outcome, export and the viewer."""
