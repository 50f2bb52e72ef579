# m3-amazon-sync for Prefect's Docker and Kubernetes work pools (prefect.yaml, definitions.work_pools).
#   docker build -t m3-amazon-sync:0.1.0 .
# The project is installed as `make install` installs it, with the extras a production run uses:
# postgres (the state store shared by several workers) and dask (scale-out on a Dask cluster); not
# make's development extras (test, lint, notebooks). tests/test_dockerfile.py keeps the two in step.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    M3SYNC_HOME=/var/lib/m3sync \
    M3SYNC_CHECKOUT=/opt/m3-amazon-sync

# prefect.yaml's pull step runs the flows from the checkout (M3SYNC_CHECKOUT): the source stays in the image.
WORKDIR /opt/m3-amazon-sync
COPY . .
RUN pip install '.[postgres,dask]'

# Runs as a user of its own; HOME (state store, sandbox, reports, config.toml) is a volume.
RUN useradd --system --uid 10001 --home-dir /var/lib/m3sync --no-create-home m3sync \
    && mkdir -p /var/lib/m3sync \
    && chown m3sync:m3sync /var/lib/m3sync
USER m3sync
VOLUME /var/lib/m3sync
CMD ["m3sync", "--help"]
