#!/usr/bin/env python3
"""Evaluates every Grafana panel query against a live Prometheus.

Usage: check_dashboards.py PROMETHEUS_URL DATASOURCE_YML DASHBOARD.json...

For each dashboard: panels and targets name the provisioned datasource's uid
(read from DATASOURCE_YML); panel ids are unique. Each template variable is
resolved as Grafana would: `All` (its allValue) when it has one, otherwise
the first value its label_values() query finds in Prometheus (none found is
a failure). Grafana's own variables get the values Grafana gives them with a
15 s scrape interval ($__rate_interval = 1m). Then every target's PromQL runs
through /api/v1/query; an error, a variable left over, an empty result or a
result of NaN only (a histogram with no observations in the window) fails.
Standard library only.
"""

import json
import math
import re
import sys
import urllib.parse
import urllib.request

BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m", "__range_s": "300"}


def api(prom, path, params):
    url = f"{prom}{path}?{urllib.parse.urlencode(params, doseq=True)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def substitute(expr, values):
    def repl(m):
        name = m.group(1) or m.group(2)
        return values.get(name, m.group(0))

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", repl, expr)


def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))


def main():
    prom, ds_yml, *boards = sys.argv[1:]
    with open(ds_yml) as f:
        uids = re.findall(r"^\s*uid:\s*['\"]?([\w-]+)", f.read(), re.M)
    if len(uids) != 1:
        sys.exit(f"{ds_yml}: expected one datasource uid, found {uids}")
    uid = uids[0]
    failures, ok, seen_uids = [], 0, set()
    for path in boards:
        with open(path) as f:
            board = json.load(f)
        name = board.get("title", path)
        if board.get("uid") in seen_uids or not board.get("uid"):
            failures.append(f"{path}: missing or duplicate dashboard uid {board.get('uid')!r}")
        seen_uids.add(board.get("uid"))
        if not isinstance(board.get("schemaVersion"), int):
            failures.append(f"{path}: no schemaVersion")
        values = dict(BUILTINS)
        for var in board.get("templating", {}).get("list", []):
            vname = var["name"]
            if var.get("datasource", {}).get("uid") != uid:
                failures.append(f"{name}: variable ${vname} does not use datasource uid {uid}")
            if var.get("includeAll") and var.get("allValue"):
                values[vname] = var["allValue"]
                continue
            query = var.get("query")
            query = query.get("query") if isinstance(query, dict) else query
            m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", query or "")
            if not m:
                failures.append(f"{name}: variable ${vname}: cannot resolve query {query!r}")
                continue
            selector = substitute(m.group(1), values)
            found = api(prom, f"/api/v1/label/{m.group(2)}/values", {"match[]": selector}).get("data") or []
            if not found:
                failures.append(f"{name}: variable ${vname}: {query} finds no value")
                continue
            values[vname] = found[0]
        ids = set()
        for panel in walk(board.get("panels", [])):
            if panel.get("id") in ids:
                failures.append(f"{name}: duplicate panel id {panel.get('id')}")
            ids.add(panel.get("id"))
            if panel.get("type") == "row":
                continue
            title = f"{name} / {panel.get('title')}"
            if panel.get("datasource", {}).get("uid") != uid:
                failures.append(f"{title}: panel datasource is not uid {uid}")
            targets = panel.get("targets") or []
            if not targets:
                failures.append(f"{title}: no query")
            for target in targets:
                label = f"{title} [{target.get('refId')}]"
                if target.get("datasource", {}).get("uid", uid) != uid:
                    failures.append(f"{label}: target datasource is not uid {uid}")
                expr = substitute(target.get("expr", ""), values)
                if not expr.strip():
                    failures.append(f"{label}: empty expr")
                    continue
                if "$" in expr:
                    failures.append(f"{label}: unknown variable left in {expr}")
                    continue
                answer = api(prom, "/api/v1/query", {"query": expr})
                if answer.get("status") != "success":
                    failures.append(f"{label}: error {answer.get('error')}: {expr}")
                    continue
                result = answer["data"]["result"]
                if answer["data"]["resultType"] == "scalar":
                    result = [{"value": result}]
                numbers = [float(r["value"][1]) for r in result]
                if not numbers:
                    failures.append(f"{label}: no data: {expr}")
                elif all(math.isnan(v) for v in numbers):
                    failures.append(f"{label}: only NaN (no observations in the window): {expr}")
                else:
                    ok += 1
    total = ok + len(failures)
    if failures:
        print(f"dashboard check FAILED ({len(failures)} problem(s), {ok} queries with data):")
        for f in failures:
            print("  " + f)
        sys.exit(1)
    print(f"  {ok} panel queries from {len(boards)} dashboards return data (of {total})")


if __name__ == "__main__":
    main()
