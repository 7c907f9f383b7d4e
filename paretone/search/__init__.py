"""The search: Optuna study, Ray driver, budgets, resume and Pareto selection.

Populated by the search work; nothing here yet.
"""
