# The pipeline image: the same install as `make install` without the dev tools, running
# as a non-root user. Everything the pipeline fetches once is fetched here, at build time:
# DuckDB's extensions (PyPI wheels) and the Data Docs assets (the npm registry's
# tarballs, fetched over HTTPS by Python: no Node or npm in the image).
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LAKEHOUSE_EXTENSION_DIR=/opt/lakehouse/duckdb_extensions \
    LAKEHOUSE_DOCS_ASSETS_DIR=/opt/lakehouse/docs_assets
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY ingest ingest
COPY lake lake
COPY expectations expectations
COPY pipeline pipeline
COPY examples examples
RUN pip install -c constraints.txt . \
 && python -m lake.extensions \
 && python -m expectations.docs_assets \
 && rm -rf ingest lake expectations pipeline
COPY dbt_project dbt_project
COPY lakehouse.yml ./
RUN useradd --create-home --uid 10001 lakehouse \
 && mkdir -p data/warehouse data/collector \
 && chown -R lakehouse /app/data /app/dbt_project
USER lakehouse
HEALTHCHECK --interval=30s --timeout=10s CMD ["lakehouse", "--help"]
CMD ["lakehouse", "schedule"]
