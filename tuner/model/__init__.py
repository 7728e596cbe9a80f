"""The fitted model: preprocessing + weights, its files and its MLflow pyfunc packaging."""
