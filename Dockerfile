# syntax=docker/dockerfile:1
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first (pyproject.toml installs no packages of its own, only the
# runtime deps), so this layer is cached until pyproject.toml changes.
COPY pyproject.toml ./
RUN pip install .

RUN useradd --system --create-home --uid 10001 app && chown app:app /app
COPY --chown=app:app . .
USER app
# Uploads, exports and job progress (a volume shared by web and worker; or S3, see README).
RUN mkdir -p /app/media

# Static files are collected at build time; the SECRET_KEY here is a throwaway
# that exists only for this RUN step and is not kept in the image.
RUN DEBUG=0 SECRET_KEY=build-time-dummy-key-not-used-at-runtime-0123456789abcdef \
    ALLOWED_HOSTS=localhost DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    python manage.py collectstatic --noinput

EXPOSE 8000
CMD ["gunicorn", "crm.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
