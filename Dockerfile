# One image for every msagent-srv service and for tool nodes:
#   docker build -t msagent-srv .                              (services: `msagent-srv manager|assistant`)
#   msagent-srv build-image --base-image python:3.11-slim      (tool nodes, from this same file)
# Exec-form RUN only, so a base image without a shell (such as one from `build-image --from-host --with pip`)
# works too.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
USER 0:0
COPY setup.cfg pyproject.toml README.md /src/
COPY msagent_srv /src/msagent_srv
RUN ["python3", "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check", "--root-user-action=ignore", "/src"]
# the assistant's data directory, owned by the user it runs as (a fresh named volume takes this ownership)
RUN ["python3", "-c", "import os; os.makedirs('/data', exist_ok=True); os.chown('/data', 65534, 65534)"]
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LANG=C.UTF-8
WORKDIR /tmp
USER 65534:65534
EXPOSE 8000 31511 31512
ENTRYPOINT ["python3", "-m", "msagent_srv.cli"]
CMD ["manager"]
