# The pipeline image: the same install as `make install`, without the dev tools.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY ingest ingest
COPY lake lake
COPY expectations expectations
COPY pipeline pipeline
COPY dbt_project dbt_project
COPY lakehouse.yml ./
RUN pip install --no-cache-dir -c constraints.txt . \
 && LAKEHOUSE_EXTENSION_DIR=/app/.duckdb_extensions python -m lake.extensions
ENV LAKEHOUSE_EXTENSION_DIR=/app/.duckdb_extensions
CMD ["lakehouse", "run"]
