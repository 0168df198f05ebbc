# logkit serve in a container: the HTTP service on the registry baked into the image, writing
# its store to the /data volume, as a non-root user.
#
#   docker build -t logkit .
#   docker run --rm -p 8080:8080 -v logkit-data:/data logkit
#
# Then http://localhost:8080/ answers {"ok": true} and http://localhost:8080/docs lets you try
# every contract. Other commands run the same way, e.g. `docker run --rm logkit lint`, and
# `docker run ... logkit serve --host 0.0.0.0 --workers 4` sets serve's options.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# The package first, so that editing the registry does not reinstall it.
COPY pyproject.toml README.md ./
COPY logkit ./logkit
COPY schemas ./schemas
RUN pip install ".[serve]"
COPY registry ./registry

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin logkit \
    && mkdir -p /data \
    && chown logkit:logkit /data
USER logkit

ENV LOGKIT_REGISTRY=/app/registry \
    LOGKIT_STORE=/data/store
VOLUME ["/data"]
EXPOSE 8080

# `docker stop` sends SIGTERM: requests in flight finish, segments are sealed, exit 143.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/', timeout=2)"]

ENTRYPOINT ["logkit"]
# Inside a container the service must listen beyond loopback; its default is 127.0.0.1.
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
