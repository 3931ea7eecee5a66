# ConvAtlas in a container: the README's `make run`, listening on 0.0.0.0:8000.
#
# It installs with the Makefile's own `install` target (a .venv with torch, then `pip install -e
# '.[dev]'`), so the image runs exactly what `make run` runs on a laptop. The model repository
# lives in the /app/models volume; the server builds what is missing there in the background.
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install --yes --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY Makefile pyproject.toml README.md ./
COPY app ./app
COPY templates ./templates
COPY static ./static
COPY scripts ./scripts
RUN make install PYTHON=python3.11

# The Makefile's HOST defaults to 127.0.0.1, which a container cannot be reached on.
ENV HOST=0.0.0.0 \
    PORT=8000 \
    CONVATLAS_MODELS_DIR=/app/models \
    CONVATLAS_WEIGHTS_DIR=/app/weights
RUN mkdir -p /app/models /app/weights
VOLUME ["/app/models", "/app/weights"]
EXPOSE 8000

CMD ["make", "run"]
