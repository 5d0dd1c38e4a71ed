# syncagent: the agent alone (no dev, test or sandbox packages), run as a non-root user.
#
#   docker build -t syncagent .                              # the agent (the default target)
#   docker build --target sandbox -t syncagent-sandbox .     # + the sandbox, for `compose --profile demo`
#   docker run -v syncagent-state:/data -v "$PWD/mappings:/app/mappings:ro" \
#       --env-file .env syncagent                            # see README "Deploy"
#
# On start, docker/entrypoint.sh migrates the state DB (under a lock, so replicas may start
# together), then runs the command (`run` by default). Rules: mount your mappings folder at
# /app/mappings; when it is absent or empty the agent uses the mappings shipped in the package.
# A syncagent.yaml mounted at /app/syncagent.yaml is read; SYNCAGENT_* variables win over it.
#
# Base image, pinned by tag. Digest: sha256:45037981b62b34b44602584fccbc4d884d5f7dc92c7ee86bb38a698a79fe1e51,
# the digest that two unrelated public Dockerfiles pin for python:3.11.17-slim (found by code
# search; NOT pulled or verified here: the machine this was written on reaches no image
# registry). Verify it with `docker buildx imagetools inspect python:3.11.17-slim`, then pin
# both: FROM python:3.11.17-slim@sha256:<digest>.
FROM python:3.11.17-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# ---- build: a virtualenv with syncagent and its pinned dependencies (pip itself stays out);
# the web extra, so that the same image serves the dashboard (`syncagent serve`)
FROM base AS build
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY syncagent ./syncagent
COPY connectors ./connectors
COPY state ./state
COPY mappings ./mappings
RUN python -m venv --without-pip /opt/syncagent \
    && pip --python /opt/syncagent/bin/python install --no-cache-dir "/src[web]"

FROM build AS build-sandbox
RUN pip --python /opt/syncagent/bin/python install --no-cache-dir "/src[sandbox]"

# ---- runtime: what both images share
FROM base AS runtime
RUN useradd --create-home --uid 10001 --user-group syncagent \
    && mkdir -p /data /app/mappings \
    && chown syncagent:syncagent /data /app/mappings
ENV PATH=/opt/syncagent/bin:$PATH \
    SYNCAGENT_STATE_URL=sqlite:////data/syncagent-state.db
COPY --chmod=755 docker/entrypoint.sh /usr/local/bin/syncagent-entrypoint
WORKDIR /app
VOLUME ["/data"]
ENTRYPOINT ["syncagent-entrypoint"]

# ---- sandbox: local Salesforce + HubSpot emulators (demo and tests only, never production)
FROM runtime AS sandbox
COPY --from=build-sandbox /opt/syncagent /opt/syncagent
USER 10001:10001
# The sandbox writes its info file once it answers; it listens on the container's loopback,
# so the demo agent shares its network namespace (see compose.yaml).
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=5 \
    CMD ["test", "-s", "/tmp/sandbox-info.json"]
CMD ["sandbox", "--port", "8765", "--info-file", "/tmp/sandbox-info.json"]

# ---- agent: the default target (last stage)
FROM runtime AS agent
COPY --from=build /opt/syncagent /opt/syncagent
USER 10001:10001
# Healthy while cycles keep finishing (see README "Health check"). Through the entrypoint, so
# that it has the agent's secrets (a Postgres password); it never migrates. Docker reserves
# exit code 2, which status --check uses for "cannot tell", so any failure becomes 1.
HEALTHCHECK --interval=60s --timeout=15s --start-period=180s --retries=3 \
    CMD ["sh", "-c", "syncagent-entrypoint status --check || exit 1"]
CMD ["run"]
