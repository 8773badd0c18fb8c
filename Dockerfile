FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 STATIC_ROOT=/app/staticfiles
WORKDIR /app
COPY pyproject.toml README.md ./
COPY controlplane ./controlplane
COPY slo ./slo
COPY routing ./routing
COPY web ./web
COPY gateway ./gateway
COPY templates ./templates
COPY static ./static
COPY manage.py ./
COPY deploy/prometheusrule.py ./deploy/prometheusrule.py
RUN pip install --no-cache-dir . && DEBUG=true DATA_DIR=/tmp/build python manage.py collectstatic --noinput
# /data (app data) and /rules (the exported SLO rules, compose's rules-sync) seed their named volumes
# with this ownership on first mount.
RUN useradd --system --uid 1000 app && mkdir -p /data /rules && chown app /data /rules
USER app
EXPOSE 8000
