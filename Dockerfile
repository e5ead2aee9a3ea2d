# Production image: gunicorn serves the web app; the same image runs the Celery worker
# and beat (see docker-compose.yml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=hitl.settings

RUN useradd --system --create-home --uid 10001 hitl
WORKDIR /app

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
# collectstatic needs settings, not a database: give it throwaway values.
RUN HITL_SECRET_KEY=build-only DATABASE_URL=postgres://build@localhost/build \
    REDIS_URL=redis://localhost:6379/0 python manage.py collectstatic --noinput -v 0

# Exports (HITL_EXPORT_DIR) when stored on the file system: a volume mounted here by
# web and workers (docker-compose.yml) starts owned by the app's user.
RUN mkdir -p /data/files && chown hitl:hitl /data/files
USER hitl
EXPOSE 8000
# Ready while the database answers: a Redis outage slows the site, it does not stop it.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"
CMD ["gunicorn", "hitl.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-", "--forwarded-allow-ips", "*"]
