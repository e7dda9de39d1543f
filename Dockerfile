# chainfeat's two images, one Dockerfile. Build from the repository root:
#   docker build --target poller -t chainfeat-poller .   the ECS Fargate poller: blockchain.com -> Kinesis
#                                                          (the CDK app builds this target: infra/stacks/ingestion.py)
#   docker build --target job -t chainfeat-job .         the Flink job for a self-managed cluster or Kubernetes
#                                                          (Managed Flink takes the zip of `chainfeat package` instead)
# Both run the project's Python (pyproject.toml: >=3.11,<3.12) from one base stage, and copy only what their code
# imports: tests/test_dockerfiles.py follows each entry point's imports through the files each target copies.
# The poller's stages come first: a builder without BuildKit builds every stage up to its target, so the
# poller (built at every `cdk deploy`) never waits for Java and PyFlink; `job` is last, the default target.

FROM python:3.11-slim-bookworm AS python


# ---- poller: polling, Kinesis and CloudWatch only (boto3, urllib3, msgspec), no Flink, no Java ----------------
FROM python AS poller-build
# Pinned as in pyproject.toml; urllib3 (botocore's, imported directly by connectors/blockchain/source.py) as in
# the project's virtual environment.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir boto3==1.44.8 botocore==1.44.8 msgspec==0.22.0 urllib3==2.8.0

FROM python AS poller
RUN useradd --create-home --uid 10001 poller
COPY --from=poller-build /opt/venv /opt/venv
WORKDIR /app
# What `python -m connectors.kinesis.poller_service` imports, file by file (not the spool, Flink or the store).
COPY connectors/__init__.py connectors/retry.py connectors/
COPY connectors/blockchain/__init__.py connectors/blockchain/poller.py connectors/blockchain/source.py \
     connectors/blockchain/transactions.py connectors/blockchain/
COPY connectors/cloudwatch/__init__.py connectors/cloudwatch/metrics.py connectors/cloudwatch/
COPY connectors/kinesis/__init__.py connectors/kinesis/poller_service.py connectors/kinesis/producer.py \
     connectors/kinesis/
USER 10001
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CHAINFEAT_ALIVE_FILE=/tmp/chainfeat-poller-alive
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "connectors.kinesis.poller_service", "--check"]
ENTRYPOINT ["python", "-m", "connectors.kinesis.poller_service"]


# ---- job: PyFlink's driver and Python UDF workers, Flink itself, the Kinesis SQL connector ---------------------
# The Kinesis SQL connector (an uber jar; Flink 2.x line 6.0.0-2.0), checked against Maven Central's published .sha1.
FROM python AS kinesis-connector
ARG KINESIS_CONNECTOR=flink-sql-connector-aws-kinesis-streams-6.0.0-2.0.jar
ARG MAVEN=https://repo1.maven.org/maven2/org/apache/flink/flink-sql-connector-aws-kinesis-streams/6.0.0-2.0
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /connector
RUN for file in "${KINESIS_CONNECTOR}" "${KINESIS_CONNECTOR}.sha1"; do \
        python -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
            "${MAVEN}/${file}" "${file}"; \
    done \
    && echo "$(cut -d ' ' -f 1 "${KINESIS_CONNECTOR}.sha1")  ${KINESIS_CONNECTOR}" | sha1sum -c - \
    && rm "${KINESIS_CONNECTOR}.sha1"

# Why not FROM flink:2.3.0-java17 (as Dockerfile.job was): its Ubuntu brings Python 3.10, which the project does
# not support, and a second Python beside it would be ours to build. The PyPI package apache-flink already ships
# all of Flink (pyflink/bin: jobmanager.sh, taskmanager.sh, standalone-job.sh, kubernetes-*.sh, flink; pyflink/lib;
# pyflink/opt/flink-python), so the project's Python plus Debian's Java 17 is the whole runtime. /opt/flink points at
# it: the path Flink's Kubernetes integration and its docs expect (kubernetes.flink.conf.dir, .log.dir).
FROM python AS job
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Java follows Debian bookworm's security updates (rebuild to take them), hence no version pin.
# man1 first: the JRE's postinst (update-alternatives) links man pages there, and slim images may lack the folder.
# hadolint ignore=DL3008
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/*
# Pinned as in pyproject.toml (apache-flink pins numpy, pandas, pyarrow, protobuf and apache-beam itself).
RUN pip install --no-cache-dir apache-flink==2.3.0 boto3==1.44.8 botocore==1.44.8 \
    && ln -s /usr/local/lib/python3.11/site-packages/pyflink /opt/flink \
    && /opt/flink/bin/flink --version
COPY --from=kinesis-connector /connector/ /opt/flink/lib/
# The image's `flink` user has uid 9999, as in Flink's own images. It may write Flink's logs and the data dir (by
# default the working directory, job/flow/entrypoint.py: checkpoints, dead letters...), not the code.
RUN useradd --create-home --uid 9999 flink \
    && install -d -o flink -g flink /opt/flink/log /opt/chainfeat
ENV FLINK_HOME=/opt/flink \
    PATH=/opt/flink/bin:$PATH \
    PYTHONUNBUFFERED=1
WORKDIR /opt/chainfeat
# The application zip's layout (job/deploy/package.py) without its site-packages/: the dependencies are installed.
COPY job/flow/zip_main.py main.py
COPY job job
COPY connectors connectors
COPY udfs udfs
COPY sql sql
USER 9999
# By default the whole job runs in this container (a MiniCluster, waiting for the job's end). On a cluster run
# `jobmanager.sh start-foreground` and `taskmanager.sh start-foreground` from this image, then submit with
#   CHAINFEAT_DETACHED=1 flink run -d -m <jobmanager>:8081 -py /opt/chainfeat/main.py
# or, with the Flink Kubernetes operator: jarURI local:///opt/flink/opt/flink-python-2.3.0.jar,
# entryClass org.apache.flink.client.python.PythonDriver, args ["-py", "/opt/chainfeat/main.py"]; this image has
# no /docker-entrypoint.sh (Flink's images' script, the default of kubernetes.entry.path): set that option.
CMD ["python", "/opt/chainfeat/main.py"]
