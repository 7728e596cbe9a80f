# logreg-tuner with the CPU build of PyTorch: the image of the MLflow server, the study service
# and the tuning workers (docker-compose.yml). Base image and torch are pinned; runs as a
# non-root user.
FROM python:3.11.13-slim-bookworm
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
WORKDIR /app
RUN pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY tuner ./tuner
COPY plugins ./plugins
COPY docker/mlflow-auth.ini /app/docker/mlflow-auth.ini
RUN pip install ".[postgres,server]"
RUN useradd --create-home --uid 10001 tuner \
    && mkdir -p /work /data /mlartifacts /mlauth \
    && chown tuner:tuner /work /mlartifacts /mlauth
USER tuner
WORKDIR /work
ENTRYPOINT ["tuner"]
CMD ["--help"]
