# logreg-tuner with the CPU build of PyTorch; used for the tuning workers and the MLflow server.
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
WORKDIR /app
RUN pip install torch --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY tuner ./tuner
COPY plugins ./plugins
RUN pip install ".[postgres]"
WORKDIR /work
ENTRYPOINT ["tuner"]
CMD ["--help"]
