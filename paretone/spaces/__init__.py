"""Search spaces: a teacher's structure plus the runtime's format table -> an Optuna-sampled space.

Populated by the search-space work; nothing here yet.
"""
