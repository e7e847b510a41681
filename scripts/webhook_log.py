"""A webhook receiver for the compose stack: prints every notification Alertmanager sends.

Replace it with your pager or ticket system; it exists so the example stack delivers
somewhere visible (`docker compose logs webhook`).
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            payload = {"unreadable": True}
        for alert in payload.get("alerts", []):
            print(
                json.dumps(
                    {
                        "receiver": self.path.strip("/"),
                        "status": alert.get("status"),
                        "labels": alert.get("labels"),
                    },
                    ensure_ascii=False,
                ),
                flush=True,
            )
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 5001
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
