# syntax=docker/dockerfile:1
# ConvAtlas, production image: `convatlas serve` on 0.0.0.0:8000 as an unprivileged user.
#
#   docker build -t convatlas .                                           CPU (ONNX Runtime on the CPU)
#   docker build --build-arg CONVATLAS_EXTRAS=build,gpu -t convatlas:gpu .  GPU (+ CUDA 13, cuDNN 9)
#
# Two stages: `build` installs the dependencies (pinned by constraints.txt, before any source is
# copied, so an edit to the code reuses those layers), then the project itself, into /opt/venv;
# `runtime` copies only that venv: no compiler, no pip cache, no test tools. torch is the CPU
# build in both images: it only builds and exports the nets (the server's background build);
# inference is ONNX Runtime's, and the GPU image adds the CUDA libraries through ONNX Runtime's
# own extras (the project's `gpu` extra). The model repository and downloaded weights live in
# volumes the image's user owns.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# `build`: the server and the model build; `build,gpu` adds ONNX Runtime's CUDA libraries.
ARG CONVATLAS_EXTRAS=build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src

# Dependencies first: these three files change far less often than the code.
COPY pyproject.toml constraints.txt scripts/requirements.py ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python requirements.py --pin torch > torch.txt \
    && python requirements.py "${CONVATLAS_EXTRAS}" > requirements.txt \
    && pip install --no-deps --index-url "${TORCH_INDEX_URL}" --requirement torch.txt \
    && pip install --requirement requirements.txt --constraint constraints.txt

# Then the project, as a wheel (not editable): templates/ and static/ go inside the package.
COPY README.md LICENSE ./
COPY app ./app
COPY templates ./templates
COPY static ./static
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps --constraint constraints.txt . \
    && convatlas --version


FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    CONVATLAS_MODELS_DIR=/app/models \
    CONVATLAS_WEIGHTS_DIR=/app/weights
RUN groupadd --system --gid 10001 convatlas \
    && useradd --system --uid 10001 --gid convatlas --create-home --home-dir /home/convatlas \
       --shell /usr/sbin/nologin convatlas \
    && mkdir -p /app/models /app/weights \
    && chown convatlas:convatlas /app/models /app/weights
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# A named volume starts as a copy of these folders, owned by convatlas.
VOLUME ["/app/models", "/app/weights"]
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"]
CMD ["convatlas", "serve", "--host", "0.0.0.0", "--port", "8000"]
