"""Helpers for tests, examples and benchmarks (e.g. a local OpenAI-compatible server)."""
