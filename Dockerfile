# The service image: a venv built in one stage, copied onto the same base in the next.
#
# Production:  docker build -t service-foundation .        (base from the registry, deps from PyPI)
# No registry: scripts/build-image                          (passes the two build args below)
#   BASE_IMAGE  any Debian-based image with CPython 3.11 and the venv module
#   WHEELHOUSE  a folder in the build context holding every wheel; nothing is fetched then
# Plain Dockerfile syntax on purpose: the legacy builder (Docker 20.10, no BuildKit) builds it.
#
# What is installed is uv.lock's runtime set, hash-checked: the pinned uv
# (scripts/lib/uv-requirements.txt, itself installed with pip --require-hashes) exports
# it with every file's sha256 and installs exactly that, then the project built from
# /src with the setuptools pyproject.toml holds. Online and offline differ only in
# where the files come from (PyPI, or WHEELHOUSE with --no-index). The `postgres` extra
# (psycopg2-binary) is part of that set: the image runs on SQLite or, given
# SERVICE_DATABASE_URL, on PostgreSQL.

ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG WHEELHOUSE=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy
COPY . /src
WORKDIR /src
RUN set -eu; \
    if [ -n "$WHEELHOUSE" ]; then set -- --no-index --find-links "/src/$WHEELHOUSE"; fi; \
    python3 -m venv /opt/uv; \
    /opt/uv/bin/pip install -q --no-deps --require-hashes "$@" -r scripts/lib/uv-requirements.txt; \
    uv=/opt/uv/bin/uv; \
    "$uv" export --frozen --no-dev --no-emit-project --no-header --extra postgres \
        --format requirements-txt -q -o /tmp/requirements.txt; \
    "$uv" venv -q --python "$(command -v python3)" /opt/venv; \
    VIRTUAL_ENV=/opt/venv "$uv" pip install -q --require-hashes --no-deps "$@" -r /tmp/requirements.txt; \
    "$uv" build -q --wheel --out-dir /tmp/dist "$@" .; \
    VIRTUAL_ENV=/opt/venv "$uv" pip install -q --no-deps --offline /tmp/dist/*.whl; \
    VIRTUAL_ENV=/opt/venv "$uv" pip check; \
    site=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
    rm -rf "$site/pony/orm/tests" "$site/falcon/bench" /opt/venv/bin/falcon-bench; \
    find /opt/venv \( -name '*.pyx' -o -name '*.pxd' -o -name '*.c' -o -name '*.h' \) -type f -delete; \
    find /opt/venv -depth -name __pycache__ -type d -exec rm -rf {} +; \
    /opt/venv/bin/python -m compileall -q --invalidation-mode checked-hash /opt/venv/lib; \
    /opt/venv/bin/python -c "import importlib.resources as r, service, db, schema_migrations, psycopg2; \
assert any(p.name.endswith('.sql') for p in r.files('schema_migrations').iterdir()), 'no migrations in the package'"

FROM ${BASE_IMAGE}
# No pip, uv, compilers, tests or caches here (the build stage pruned the venv: third-party
# test suites, benchmarks, Cython sources); drop the base's own pip when it has one
# (python:*-slim has one, the Debian base has none).
RUN set -eu; \
    if python3 -m pip --version >/dev/null 2>&1; then python3 -m pip uninstall -q -y pip setuptools wheel 2>/dev/null || true; fi; \
    rm -rf /root/.cache; \
    groupadd --gid 10001 service; \
    useradd --no-log-init --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin service; \
    mkdir -p /data; \
    chown 10001:10001 /data
COPY --from=build /opt/venv /opt/venv
LABEL org.opencontainers.image.title="service-foundation" \
      org.opencontainers.image.description="Falcon + Pony ORM + SQLite HTTP service"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SERVICE_HOST=0.0.0.0 \
    SERVICE_PORT=8080 \
    SERVICE_WORKERS=1 \
    SERVICE_DEFAULT_DATABASE_PATH=/data/service.sqlite3
# SERVICE_WORKERS: serving processes (auto: one per core the container may use,
# its --cpus quota included); docs/operations.md, "Workers", says how to size it.
# The database, its -wal and -shm files live in /data; nothing else is written
# (run with --read-only and a tmpfs on /tmp).
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 8080
# urllib raises on a non-2xx answer, so 503 (not ready) fails the check.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/opt/venv/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('SERVICE_PORT', '8080'), timeout=2)"]
# Exec form: python is PID 1 and receives SIGTERM itself; the service drains
# in-flight requests, checkpoints the WAL and exits 0. -P keeps /data off sys.path.
ENTRYPOINT ["/opt/venv/bin/python", "-P", "-m", "service"]
CMD ["serve"]
