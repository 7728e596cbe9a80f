"""Studies: the spec, storage (SQLAlchemy), and the search loop (the only package importing Optuna)."""
