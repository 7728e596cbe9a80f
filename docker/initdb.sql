-- The MLflow store and the Optuna study database are separate databases on one server, both
-- owned by the compose file's POSTGRES_USER (the image runs this script with psql, as that user).
\getenv owner POSTGRES_USER
CREATE DATABASE mlflow OWNER :"owner";
