"""Evaluators: recipe -> fine-tuned student -> metrics and artifacts (runs inside a Ray task).

Populated by the compression and search work; nothing here yet.
"""
