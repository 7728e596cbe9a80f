"""MLflow tracking of a study: a parent run, a run per trial, plots and the registered model."""
