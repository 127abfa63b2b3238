# ccproxy in a container: `docker build -t ccproxy .` then see compose.yaml, or
#   docker run -d -p 127.0.0.1:3456:3456 -e CCPROXY_API_KEY=choose-one -e ANTHROPIC_API_KEY -v ccproxy:/data ccproxy
#
# Two stages: the first builds a virtualenv with ccproxy and its wheels, the second copies only
# that onto the slim Python image (no compiler, no pip cache, no sources). The server runs as an
# unprivileged user; its config, accounts, state and log live on the /data volume. Inside the
# container it listens on 0.0.0.0 so the published port reaches it, and CCPROXY_REQUIRE_APIKEY
# makes `ccproxy serve` refuse to start that way without an apikey.
ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ccproxy.py ./
COPY ccproxy_core ./ccproxy_core
# The redis extra: instances share state through Redis (compose.many.yaml); the client is imported
# only when state.backend is redis, so a single instance pays nothing for it.
RUN python -m venv /opt/ccproxy \
    && /opt/ccproxy/bin/pip install --no-cache-dir "./[redis]" \
    && find /opt/ccproxy -name __pycache__ -prune -exec rm -rf {} +

FROM python:${PYTHON_VERSION}-slim
LABEL org.opencontainers.image.title="ccproxy" \
      org.opencontainers.image.description="One HTTP proxy between Claude Code / OpenAI clients and LLM providers" \
      org.opencontainers.image.source="https://github.com/ccproxy/ccproxy" \
      org.opencontainers.image.licenses="MIT"
# /data/config and /data/.claude exist in the image, owned by the user, so volumes mounted there
# (compose.many.yaml shares them between instances) start out writable by it.
RUN useradd --system --uid 10001 --user-group --home-dir /data --create-home --shell /usr/sbin/nologin ccproxy \
    && install -d -o 10001 -g 10001 -m 0700 /data/config /data/.claude
COPY --from=build /opt/ccproxy /opt/ccproxy
# platformdirs puts the user config at /data/config/ccproxy/config.json, the daemon's log under
# /data/state, and accounts.json defaults to /data/.claude/accounts.json: all on the volume.
ENV PATH=/opt/ccproxy/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOME=/data \
    XDG_CONFIG_HOME=/data/config \
    XDG_STATE_HOME=/data/state \
    XDG_DATA_HOME=/data/share \
    XDG_CACHE_HOME=/data/cache \
    CCPROXY_HOST=0.0.0.0 \
    CCPROXY_PORT=3456 \
    CCPROXY_REQUIRE_APIKEY=1
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 3456
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['CCPROXY_PORT'] + '/health', timeout=4)"]
ENTRYPOINT ["ccproxy"]
CMD ["serve"]
