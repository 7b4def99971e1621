#!/usr/bin/env python3
"""The source of deploy/grafana/dashboards/*.json: every panel and its PromQL
in one place, easier to review than the JSON Grafana reads.

Usage: dashboards.py          rewrite the JSON files
       dashboards.py --check  fail if the JSON files differ from this source
                              (scripts/deploy/observability.sh runs it)

Edit this file and run it, rather than the JSON. A dashboard changed in
Grafana's UI can be exported and carried over here by hand.
Standard library only.
"""

import json
import os
import sys

# The provisioned datasource (deploy/grafana/provisioning/datasources).
DS = {"type": "prometheus", "uid": "basalt-prometheus"}
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "deploy", "grafana", "dashboards")

SEL = 'job=~"$job",instance=~"$instance"'
RI = "$__rate_interval"

class Board:
    """Panels laid out left to right on Grafana's 24-column grid."""

    def __init__(self):
        self.panels, self.y, self.x, self.rowh, self.id = [], 0, 0, 0, 1
    def row(self, title):
        self.newline()
        self.panels.append({"type": "row", "title": title, "id": self.id, "collapsed": False,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.id += 1
        self.y += 1
    def newline(self):
        if self.x:
            self.y, self.x, self.rowh = self.y + self.rowh, 0, 0
    def panel(self, title, targets, kind="timeseries", w=12, h=8, unit=None, desc=None, extra=None):
        if self.x + w > 24:
            self.newline()
        tg = []
        for i, t in enumerate(targets):
            expr, legend = t if isinstance(t, tuple) else (t, None)
            d = {"refId": chr(65 + i), "datasource": DS, "expr": expr, "range": True, "instant": False}
            if legend: d["legendFormat"] = legend
            tg.append(d)
        p = {"type": kind, "title": title, "id": self.id, "datasource": DS,
             "gridPos": {"h": h, "w": w, "x": self.x, "y": self.y}, "targets": tg,
             "fieldConfig": {"defaults": {}, "overrides": []}, "options": {}}
        if desc: p["description"] = desc
        if unit: p["fieldConfig"]["defaults"]["unit"] = unit
        if kind == "timeseries":
            p["options"] = {"legend": {"displayMode": "table", "placement": "bottom", "showLegend": True, "calcs": ["lastNotNull", "max"]},
                            "tooltip": {"mode": "multi", "sort": "desc"}}
        if kind == "stat":
            p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                            "colorMode": "background", "graphMode": "area", "textMode": "auto"}
        for k, v in (extra or {}).items():
            if k == "defaults":
                p["fieldConfig"]["defaults"].update(v)
            else:
                p[k] = v
        self.panels.append(p)
        self.id += 1
        self.x += w
        self.rowh = max(self.rowh, h)

def var(name, query, label, all_=True):
    v = {"name": name, "label": label, "type": "query", "datasource": DS,
         "query": query,
         "definition": query, "refresh": 2, "sort": 1, "includeAll": all_, "multi": all_,
         "current": {}, "options": [], "hide": 0}
    if all_:
        v["allValue"] = ".*"
        v["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return v

def dashboard(uid, title, desc, board, extra_vars=()):
    return {
        "uid": uid, "title": title, "description": desc, "tags": ["basalt"],
        "schemaVersion": 39, "version": 1, "editable": True, "graphTooltip": 1,
        "time": {"from": "now-1h", "to": "now"}, "refresh": "30s", "timezone": "browser",
        "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                                  "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                                  "name": "Annotations & Alerts", "type": "dashboard"}]},
        "links": [{"title": "Basalt dashboards", "type": "dashboards", "tags": ["basalt"], "asDropdown": True, "includeVars": True, "keepTime": True}],
        "templating": {"list": [
            var("job", "label_values(basalt_build_info, job)", "Job", all_=False),
            var("instance", 'label_values(basalt_build_info{job=~"$job"}, instance)', "Node"),
            *extra_vars]},
        "panels": board.panels,
    }

# ---------------- HTTP (RED) ----------------
b = Board()
R = 'basalt_http_requests_total{%s}' % SEL
RR = 'basalt_http_requests_total{%s,route=~"$route"}' % SEL
B = 'basalt_http_request_duration_seconds_bucket{%s,route=~"$route"}' % SEL
b.row("Overview (all routes)")
b.panel("Requests", [f'sum(rate({R}[{RI}]))'], "stat", w=4, h=4, unit="reqps")
b.panel("5xx ratio", [f'(sum(rate(basalt_http_requests_total{{{SEL},status=~"5.."}}[{RI}])) or vector(0)) / sum(rate({R}[{RI}]))'],
        "stat", w=4, h=4, unit="percentunit",
        desc="Share of requests answered with a server error. The BasaltHighErrorRate alert fires above 5 % for 5 minutes.",
        extra={"defaults": {"thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}, {"color": "orange", "value": 0.01}, {"color": "red", "value": 0.05}]}}})
b.panel("p99 latency", [f'histogram_quantile(0.99, sum by (le) (rate(basalt_http_request_duration_seconds_bucket{{{SEL}}}[{RI}])))'],
        "stat", w=4, h=4, unit="s",
        extra={"defaults": {"thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}, {"color": "orange", "value": 0.5}, {"color": "red", "value": 1}]}}})
b.panel("In flight", [f'sum(basalt_http_requests_in_flight{{{SEL}}})'], "stat", w=4, h=4)
b.panel("Open connections", [f'sum(basalt_http_connections_open{{{SEL}}})'], "stat", w=4, h=4)
b.panel("Nodes ready", [(f'sum(basalt_ready{{{SEL}}})', "ready"), (f'count(up{{{SEL}}})', "scraped")], "stat", w=4, h=4,
        desc="basalt_ready: 1 per node whose last /readyz passed.")
b.row("Rate, errors and duration per route")
b.panel("Requests per route", [(f'sum by (route) (rate({RR}[{RI}]))', "{{route}}")], unit="reqps")
b.panel("5xx ratio per route",
        [(f'(sum by (route) (rate(basalt_http_requests_total{{{SEL},route=~"$route",status=~"5.."}}[{RI}])) or sum by (route) (rate({RR}[{RI}])) * 0) / sum by (route) (rate({RR}[{RI}]))', "{{route}}")],
        unit="percentunit", desc="0 for routes without server errors, so every route shows.")
b.panel("Responses by status class", [(f'sum(rate(basalt_http_requests_total{{{SEL},route=~"$route",status=~"{c}.."}}[{RI}])) or vector(0)', f"{c}xx") for c in "2345"], unit="reqps")
b.panel("Client errors (4xx) per route and status", [(f'sum by (route, status) (rate(basalt_http_requests_total{{{SEL},route=~"$route",status=~"4.."}}[{RI}]))', "{{route}} {{status}}")], unit="reqps")
b.panel("p50 latency per route", [(f'histogram_quantile(0.5, sum by (le, route) (rate({B}[{RI}])))', "{{route}}")], w=8, unit="s")
b.panel("p95 latency per route", [(f'histogram_quantile(0.95, sum by (le, route) (rate({B}[{RI}])))', "{{route}}")], w=8, unit="s")
b.panel("p99 latency per route", [(f'histogram_quantile(0.99, sum by (le, route) (rate({B}[{RI}])))', "{{route}}")], w=8, unit="s",
        desc="The BasaltHighLatencyP99 alert fires above 1 s for 10 minutes.")
b.row("Connections and GraphQL")
b.panel("Open connections per node", [(f'sum by (instance) (basalt_http_connections_open{{{SEL}}})', "{{instance}}")], w=8)
b.panel("Connections closed by the server", [(f'sum by (reason) (rate(basalt_http_connections_closed_total{{{SEL}}}[{RI}]))', "{{reason}}")], w=8, unit="cps",
        desc="Slow request heads, idle keep-alives, over capacity (http.max_connections), slow TLS handshakes.")
b.panel("GraphQL operations", [(f'sum by (operation, outcome) (rate(basalt_graphql_operations_total{{{SEL}}}[{RI}]))', "{{operation}} {{outcome}}")], w=8, unit="ops",
        desc="/graphql is one route for the request metrics; this tells queries from mutations and failures from successes.")
http = dashboard("basalt-http", "Basalt HTTP", "RED view of Basalt's HTTP API: rate, errors and duration, per route.", b,
                 [var("route", 'label_values(basalt_http_requests_total{job=~"$job"}, route)', "Route")])

# ---------------- Runtime ----------------
b = Board()
b.row("Dependencies")
b.panel("Scraped", [(f'up{{{SEL}}}', "{{instance}}")], "stat", w=5, h=4, extra={"defaults": {"mappings": [{"type": "value", "options": {"0": {"text": "down", "color": "red"}, "1": {"text": "up", "color": "green"}}}]}})
b.panel("Ready", [(f'basalt_ready{{{SEL}}}', "{{instance}}")], "stat", w=5, h=4, desc="BasaltNotReady fires when 0 for 2 minutes.",
        extra={"defaults": {"mappings": [{"type": "value", "options": {"0": {"text": "not ready", "color": "red"}, "1": {"text": "ready", "color": "green"}}}]}})
b.panel("Broker up", [(f'basalt_broker_up{{{SEL}}}', "{{instance}}")], "stat", w=5, h=4, desc="RabbitMQ connection (always 1 on the in-process bus). BasaltBrokerDown fires when 0 for 2 minutes.",
        extra={"defaults": {"mappings": [{"type": "value", "options": {"0": {"text": "down", "color": "red"}, "1": {"text": "up", "color": "green"}}}]}})
b.panel("Redis up", [(f'basalt_redis_up{{{SEL}}}', "{{instance}}")], "stat", w=5, h=4, desc="Whether the last Redis command succeeded. Only exported when Redis is configured.",
        extra={"defaults": {"mappings": [{"type": "value", "options": {"0": {"text": "down", "color": "red"}, "1": {"text": "up", "color": "green"}}}]}})
b.panel("Version", [(f'count by (version, database) (basalt_build_info{{{SEL}}})', "{{version}} on {{database}}")], "stat", w=4, h=4,
        extra={"options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "textMode": "name", "colorMode": "none", "graphMode": "none"}})
b.row("Database pool")
b.panel("Pool connections", [(f'sum by (instance) (basalt_db_pool_connections{{{SEL}}})', "{{instance}} open"),
                             (f'sum by (instance) (basalt_db_pool_idle{{{SEL}}})', "{{instance}} idle"),
                             (f'sum by (instance) (basalt_db_pool_max{{{SEL}}})', "{{instance}} max")], w=8)
b.panel("Pool in use", [(f'sum by (instance) (basalt_db_pool_connections{{{SEL}}} - basalt_db_pool_idle{{{SEL}}}) / sum by (instance) (basalt_db_pool_max{{{SEL}}})', "{{instance}}")], w=8, unit="percentunit")
b.panel("Callers waiting for a connection", [(f'sum by (instance) (basalt_db_pool_waiting{{{SEL}}})', "{{instance}}")], w=8,
        desc="Above 0 for long: the pool is too small for the load (database.max_connections) or queries are slow.")
b.row("Jobs")
b.panel("Queue by state", [(f'max by (state) (basalt_jobs_queued{{{SEL}}})', "{{state}}")], w=8,
        desc="Every node with workers counts the whole queue, hence max, not sum. dead: used up their attempts (GET /api/admin/jobs?state=dead).")
b.panel("Jobs finished by kind and outcome", [(f'sum by (kind, outcome) (rate(basalt_job_run_seconds_count{{{SEL}}}[{RI}]))', "{{kind}} {{outcome}}")], w=8, unit="ops",
        desc="BasaltJobsDeadLettered fires on any outcome=dead.")
b.panel("Dead jobs", [(f'max(basalt_jobs_queued{{{SEL},state="dead"}})', "dead")], "stat", w=8,
        extra={"defaults": {"thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}, {"color": "red", "value": 1}]}}})
b.panel("Wait before a worker starts a job (p95)", [(f'histogram_quantile(0.95, sum by (le, kind) (rate(basalt_job_wait_seconds_bucket{{{SEL}}}[{RI}])))', "{{kind}}")], unit="s")
b.panel("Job run time (p95)", [(f'histogram_quantile(0.95, sum by (le, kind) (rate(basalt_job_run_seconds_bucket{{{SEL}}}[{RI}])))', "{{kind}}")], unit="s")
b.row("Outbox and broadcast")
b.panel("Outbox pending", [(f'max(basalt_outbox_pending{{{SEL}}})', "pending")], w=8, desc="Domain events recorded and not yet published to the broker.")
b.panel("Outbox lag", [(f'max(basalt_outbox_lag_seconds{{{SEL}}})', "oldest unpublished")], w=8, unit="s",
        desc="Age of the oldest unpublished event. BasaltOutboxLag fires above 60 s for 5 minutes, BasaltOutboxLagCritical above 600 s.")
b.panel("Broadcast payloads", [(f'sum(rate(basalt_broadcast_published_total{{{SEL}}}[{RI}]))', "published"),
                               (f'sum(rate(basalt_broadcast_delivered_total{{{SEL}}}[{RI}]))', "delivered"),
                               (f'sum(rate(basalt_broadcast_dropped_total{{{SEL}}}[{RI}]))', "dropped"),
                               (f'sum(rate(basalt_broadcast_gaps_total{{{SEL}}}[{RI}]))', "gaps")], w=8, unit="ops")
b.row("Cache")
b.panel("Cache hit rate", [(f'sum(rate(basalt_cache_lookups_total{{{SEL},result="hit"}}[{RI}])) / sum(rate(basalt_cache_lookups_total{{{SEL},result=~"hit|miss"}}[{RI}]))', "hit rate")], w=8, unit="percentunit",
        desc="Hits over hits and misses; bypasses (cache unreachable) are shown on their own.")
b.panel("Cache lookups by result and layer", [(f'sum by (result, layer) (rate(basalt_cache_lookups_total{{{SEL}}}[{RI}]))', "{{result}} {{layer}}")], w=16, unit="ops",
        desc="layer: local (the node's memory) or shared (Redis), for hits.")
b.row("Chat")
b.panel("Chat sockets open", [(f'sum by (instance) (basalt_chat_sockets{{{SEL}}})', "{{instance}}")], w=8)
b.panel("Chat messages delivered", [(f'sum(rate(basalt_chat_delivered_messages_total{{{SEL}}}[{RI}]))', "live"),
                                    (f'sum(rate(basalt_chat_caught_up_messages_total{{{SEL}}}[{RI}]))', "caught up")], w=8, unit="ops")
b.panel("Chat sockets closed by reason", [(f'sum by (reason) (rate(basalt_chat_socket_closes_total{{{SEL}}}[{RI}]))', "{{reason}}")], w=8, unit="cps")
runtime = dashboard("basalt-runtime", "Basalt runtime", "Dependencies, database pool, jobs, outbox, cache and chat of Basalt's nodes.", b)


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for name, board in (("basalt-http.json", http), ("basalt-runtime.json", runtime)):
        path = os.path.normpath(os.path.join(OUT, name))
        text = json.dumps(board, indent=2) + "\n"
        if check:
            try:
                with open(path) as f:
                    same = f.read() == text
            except FileNotFoundError:
                same = False
            if not same:
                stale.append(path)
        else:
            with open(path, "w") as f:
                f.write(text)
            print(f"wrote {path}")
    if stale:
        sys.exit(f"not what {__file__} makes (run it): {', '.join(stale)}")
    if check:
        print("  the dashboards' JSON is what scripts/deploy/observability/dashboards.py makes")


if __name__ == "__main__":
    main()
