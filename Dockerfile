# One image for every msagent-srv service and for tool nodes:
#   docker build -t msagent-srv .                      (services: `msagent-srv manager|assistant`)
#   msagent-srv build-image --base-image python:3.11-slim   (tool nodes, same file)
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LANG=C.UTF-8
WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY msagent_srv ./msagent_srv
RUN pip install --no-cache-dir . && rm -rf /src
WORKDIR /tmp
USER 65534:65534
EXPOSE 8000 31511 31512
ENTRYPOINT ["msagent-srv"]
CMD ["manager"]
