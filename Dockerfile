# One image for the stream worker, the HTTP API and the producer/consumer CLIs.
#
#   docker build -t streaming-recall .                                    # CPU PaddlePaddle
#   docker build -t streaming-recall:gpu \
#       --build-arg PADDLE_PACKAGE=paddlepaddle-gpu \
#       --build-arg PADDLE_INDEX_URL=<PaddlePaddle's CUDA 12.6 wheel index> .
#
# The GPU wheel brings its CUDA/cuDNN libraries as pip dependencies, so a slim Python base is
# enough; the host needs an NVIDIA driver and the NVIDIA container toolkit.
# Every setting comes from RECALL_* environment variables (streams/settings.py).

FROM python:3.11-slim

ARG PADDLE_PACKAGE=paddlepaddle
ARG PADDLE_VERSION=3.3.1
ARG PADDLE_INDEX_URL=

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RECALL_MODEL_DIR=/models

WORKDIR /app

# Dependencies first (cached layer); PaddlePaddle separately so the build arg picks CPU or GPU.
COPY requirements.txt .
RUN grep -v '^paddlepaddle' requirements.txt > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && if [ -z "$PADDLE_INDEX_URL" ]; then \
         pip install "${PADDLE_PACKAGE}==${PADDLE_VERSION}"; \
       else \
         pip install "${PADDLE_PACKAGE}==${PADDLE_VERSION}" --extra-index-url "$PADDLE_INDEX_URL"; \
       fi \
    && rm /tmp/requirements.txt

COPY pyproject.toml .
COPY streams ./streams
COPY model ./model
COPY producers ./producers
COPY consumers ./consumers

RUN useradd --create-home --uid 1000 recall \
    && mkdir -p /models && chown recall /models
USER recall

VOLUME ["/models"]
EXPOSE 8000

CMD ["python", "-m", "streams.worker"]
