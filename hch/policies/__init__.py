"""Policies beyond the built-in experts: one module each (llm, human, scripted, ...)."""
