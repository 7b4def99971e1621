#!/usr/bin/env python3
"""The flash sale of bench/shop.sh: BUYERS anonymous buyers, each with a
cart holding one unit of SKU, check out at the same moment.

    python3 bench/shop/flash.py BASE_URL SKU BUYERS OUT.json

Untimed set-up: every buyer's cart (`POST /api/shop/carts`) and item
(`POST /api/shop/carts/{id}/items`), and one open keep-alive connection per
buyer. Timed: one thread per buyer waits at a barrier, then sends its
checkout (`POST /api/shop/carts/{id}/checkout` with `X-Cart-Token`, a fresh
`Idempotency-Key`, and the request body of the shop's tests: Germany,
Stripe). Writes the statuses, each checkout's latency (send to last byte)
and the wall time from the barrier to the last answer.
"""

import http.client
import json
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

base, sku, buyers, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
url = urlparse(base)
BODY = json.dumps({
    "email": "buyer@example.com",
    "shipping_address": {"name": "Ada Buyer", "line1": "Hauptstr. 1", "city": "Berlin",
                         "postal_code": "10115", "country": "DE"},
    "provider": "stripe",
})


def request(conn, method, path, body=None, headers=None):
    headers = dict(headers or {})
    if body is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    return response.status, data


def prepare(_):
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    status, data = request(conn, "POST", "/api/shop/carts")
    assert status == 201, (status, data)
    cart = json.loads(data)["cart"]
    status, data = request(conn, "POST", f"/api/shop/carts/{cart['id']}/items",
                           json.dumps({"sku": sku, "quantity": 1}), {"X-Cart-Token": cart["token"]})
    assert status == 200, (status, data)
    return cart["id"], cart["token"]


with ThreadPoolExecutor(8) as pool:
    carts = list(pool.map(prepare, range(buyers)))

barrier = threading.Barrier(buyers + 1)
results = [None] * buyers


def buy(i):
    cart_id, token = carts[i]
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    conn.connect()
    barrier.wait()
    start = time.perf_counter()
    try:
        status, data = request(conn, "POST", f"/api/shop/carts/{cart_id}/checkout", BODY,
                               {"X-Cart-Token": token, "Idempotency-Key": str(uuid.uuid4())})
        detail = ""
        if status != 201:
            try:
                detail = json.loads(data).get("detail", "")
            except ValueError:
                detail = data[:200].decode(errors="replace")
    except Exception as e:  # a socket error is a result too
        status, detail = 0, repr(e)
    results[i] = (status, start, time.perf_counter(), detail)


threads = [threading.Thread(target=buy, args=(i,)) for i in range(buyers)]
for t in threads:
    t.start()
barrier.wait()
t0 = time.perf_counter()
for t in threads:
    t.join()
t1 = time.perf_counter()
latencies = sorted(r[2] - r[1] for r in results)


def pct(p):
    return latencies[min(len(latencies) - 1, int(round(p / 100 * len(latencies) + 0.5)) - 1)]


statuses = {}
for r in results:
    statuses[r[0]] = statuses.get(r[0], 0) + 1
created_times = sorted(r[2] - t0 for r in results if r[0] == 201)
json.dump({
    "buyers": buyers,
    "wall_s": t1 - t0,
    "checkouts_per_s": buyers / (t1 - t0),
    "sold_out_after_s": created_times[-1] if created_times else None,
    "p50_ms": pct(50) * 1000,
    "p99_ms": pct(99) * 1000,
    "max_ms": latencies[-1] * 1000,
    "statuses": statuses,
    "created": statuses.get(201, 0),
    "out_of_stock_409": sum(1 for r in results if r[0] == 409 and "out of stock" in r[3]),
    "other_details": sorted({r[3] for r in results if r[0] not in (201, 409)})[:5],
}, open(out, "w"), indent=1)
