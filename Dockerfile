# syncagent: a small image that runs the scheduler (`syncagent run`).
# Build:  docker build -t syncagent .
# Run:    docker run -v syncagent-state:/data -v $PWD/syncagent.yaml:/app/syncagent.yaml:ro syncagent
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY syncagent ./syncagent
COPY connectors ./connectors
COPY state ./state
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SYNCAGENT_STATE_URL=sqlite:////data/syncagent-state.db \
    SYNCAGENT_MAPPINGS_DIR=/app/mappings
COPY --from=build /install /usr/local
RUN useradd --create-home --uid 10001 syncagent \
    && mkdir -p /data /app \
    && chown syncagent:syncagent /data
WORKDIR /app
COPY --chown=syncagent:syncagent mappings ./mappings
USER syncagent
VOLUME ["/data"]
# Healthy while the last cycle finished recently (status exits non-zero when it is stale).
HEALTHCHECK --interval=60s --timeout=10s --start-period=120s --retries=3 \
    CMD ["syncagent", "status", "--check"]
ENTRYPOINT ["syncagent"]
CMD ["run"]
