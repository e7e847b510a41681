# contact-monitor: the daemon, listening on all interfaces inside its container only.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY scripts/webhook_log.py ./scripts/webhook_log.py
RUN pip install --no-cache-dir . && useradd --system --uid 10001 monitor \
    && mkdir -p /var/lib/contact-monitor && chown monitor /var/lib/contact-monitor
COPY config/channels.yaml config/schema.json /etc/contact-monitor/
USER monitor
EXPOSE 9099
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9099/healthz', timeout=2)"
ENTRYPOINT ["contact-monitor"]
CMD ["run", "--config", "/etc/contact-monitor/channels.yaml", "--listen", "0.0.0.0:9099", \
     "--history-db", "/var/lib/contact-monitor/history.sqlite3"]

