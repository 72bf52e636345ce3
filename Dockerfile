# The image of one method: the pinned runtime (envs/image.txt), the shared package, the registry and
# that method's own module; the entry point is the CLI (`docker run IMAGE train --method ...`).
# Built offline from a wheelhouse in the build context (`ebmbench container wheelhouse`),
# as on an air-gapped cluster. Normally built by `ebmbench container build` (the
# workflow's image rule), which stages exactly these files and tags the image by their content hash.
#
# BASE_IMAGE: an official CUDA PyTorch runtime image whose torch equals the pin in envs/image.txt,
# so pip keeps the base's CUDA torch ("Requirement already satisfied") and installs the rest; any
# image with python3 (>= 3.11, with venv) works, e.g. a debootstrap'ed Debian for CPU-only tests.
ARG BASE_IMAGE=pytorch/pytorch:2.13.0-cuda12.8-cudnn9-runtime

FROM ${BASE_IMAGE} AS deps
# EXTRA_CA: a PEM file in the build context (certs/...) trusted in addition to the system CAs, for
# networks that intercept TLS; pip then also reaches PIP_INDEX_URL if one is given (default: none,
# the build is offline).
ARG EXTRA_CA=""
ARG PIP_INDEX_URL=""
COPY envs/image.txt /tmp/image.txt
COPY wheels/ /tmp/wheels/
COPY certs/ /tmp/certs/
# --system-site-packages: on a PyTorch base the venv sees its CUDA torch and pip skips those pins.
# $src is split on purpose (two options and their values).
# hadolint ignore=SC2086
RUN python3 -m venv --system-site-packages /opt/venv \
    && if [ -n "$EXTRA_CA" ]; then export PIP_CERT="/tmp/$EXTRA_CA"; fi \
    && if [ -n "$PIP_INDEX_URL" ]; then src="--index-url $PIP_INDEX_URL --find-links /tmp/wheels"; \
       else src="--no-index --find-links /tmp/wheels"; fi \
    && /opt/venv/bin/pip install --no-cache-dir $src -r /tmp/image.txt

FROM ${BASE_IMAGE}
# The runtime first: it does not depend on METHOD, so every method's image shares this layer.
COPY --from=deps /opt/venv /opt/venv
COPY ebmbench/ /opt/ebmbench/ebmbench/
# methods/ is the package ebmbench.methods (pyproject's package-dir mapping), so it goes inside.
COPY methods/ /opt/ebmbench/ebmbench/methods/
COPY config/schema.yaml /opt/ebmbench/config/schema.yaml
COPY pyproject.toml /opt/ebmbench/pyproject.toml
# A plug-in method's own package (empty for the built-ins), registered by EBMBENCH_PLUGINS below.
COPY plugins/ /opt/plugins/
ARG METHOD
ARG PLUGINS=""
ARG IMAGE_TAG=""
# The commit the image was built from (its files are identical for every commit with the same tag).
ARG GIT_COMMIT=""
ARG GIT_DIRTY=""
LABEL org.ebmbench.method="${METHOD}" org.ebmbench.tag="${IMAGE_TAG}"
# HOME and caches in /tmp: `docker run --user UID:GID` runs as a user the image does not know.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/ebmbench:/opt/plugins \
    EBMBENCH_PLUGINS=${PLUGINS} \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    EBMBENCH_METHOD=${METHOD} \
    EBMBENCH_IMAGE_TAG=${IMAGE_TAG} \
    EBMBENCH_GIT_COMMIT=${GIT_COMMIT} \
    EBMBENCH_GIT_DIRTY=${GIT_DIRTY}
# Fail at build time, not in the first job, if the method's module does not import in the image.
RUN test -n "$METHOD" && python3 -c "import sys; from ebmbench.registry import get_method; get_method(sys.argv[1])" "$METHOD" \
    && useradd --create-home --uid 1000 ebm
USER 1000:1000
WORKDIR /home/ebm
ENTRYPOINT ["python3", "-m", "ebmbench"]
CMD ["--help"]
