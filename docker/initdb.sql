-- The MLflow store and the Optuna study database are separate databases on one server.
CREATE DATABASE mlflow OWNER tuner;
