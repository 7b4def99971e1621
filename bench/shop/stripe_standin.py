#!/usr/bin/env python3
"""A minimal, fast stand-in for Stripe's `POST /v1/payment_intents`, for
bench/shop.sh only (never for tests: those use localstripe).

    python3 bench/shop/stripe_standin.py PORT

Follows Stripe's published contract for that one call, as far as Basalt's
adapter (crates/basalt-shop/src/payments/stripe.rs) relies on it: a
form-encoded body with `amount` and `currency`, `Authorization: Bearer
sk_…` (else 401 with Stripe's error object), an `Idempotency-Key` that
returns the first response again for the same key, and a PaymentIntent
object in `requires_payment_method` with an `id` (`pi_…`) and a
`client_secret` (`pi_…_secret_…`). Everything else answers 404 with
Stripe's error shape. Threaded, keeps no state but the idempotency map, so
that the flash sale measures the database path, not a fake's speed.
"""

import json
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

IDEMPOTENT = {}
LOCK = threading.Lock()


def error(kind, message):
    return {"error": {"type": kind, "message": message}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.send(404, error("invalid_request_error", "Unrecognized request URL"))

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        if not (self.headers.get("Authorization") or "").startswith("Bearer sk_"):
            return self.send(401, error("invalid_request_error", "Invalid API Key provided"))
        if self.path != "/v1/payment_intents":
            return self.send(404, error("invalid_request_error", "Unrecognized request URL"))
        key = self.headers.get("Idempotency-Key")
        with LOCK:
            if key and key in IDEMPOTENT:
                return self.send(200, IDEMPOTENT[key])
        try:
            amount = int(form["amount"][0])
            currency = form["currency"][0]
        except (KeyError, ValueError):
            return self.send(400, error("invalid_request_error", "Missing required param: amount"))
        pid = "pi_" + secrets.token_hex(12)
        intent = {
            "id": pid,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "currency": currency,
            "status": "requires_payment_method",
            "client_secret": pid + "_secret_" + secrets.token_hex(12),
            "metadata": {k[9:-1]: v[0] for k, v in form.items() if k.startswith("metadata[")},
        }
        with LOCK:
            intent = IDEMPOTENT.setdefault(key, intent) if key else intent
        self.send(200, intent)


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 1024
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
