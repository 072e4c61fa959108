# Kefu Hub: one hub process. Use docker-compose.yml for hub + PostgreSQL + Redis.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml constraints.txt README.md ./
COPY hub ./hub
COPY channels ./channels
COPY nlu ./nlu
COPY flows ./flows
COPY knowledge ./knowledge
COPY admin ./admin
RUN pip install -c constraints.txt .

COPY config.yaml ./
COPY examples ./examples
RUN useradd --create-home kefu && mkdir -p /app/data && chown kefu /app/data
USER kefu

EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["kefu", "run", "--host", "0.0.0.0", "--port", "8000"]
