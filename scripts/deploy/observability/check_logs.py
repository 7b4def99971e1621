#!/usr/bin/env python3
"""Checks that the log-shipping config reads fields a real Basalt writes.

Usage: check_logs.py VECTOR_TOML SERVER_STDOUT [--require-trace-id] [--shipped EVENTS]

The remap transform of deploy/logging/vector.toml reads Basalt's JSON line as
`line.<field>`. Every such field must be in the captured log: timestamp,
level, target and message on every line; the others on every access line
(message "request", target basalt::http), which carry the most fields.
trace_id is only required with --require-trace-id (once tracing is in the
code). Every stdout line must be JSON, with an RFC 3339 timestamp and a
tracing level. With --shipped, EVENTS is what the transform made of each
line (vrl-check's output): one event per line, with the ECS fields Kibana
reads. Standard library only.
"""

import datetime
import json
import re
import sys
import tomllib

EVERY_LINE = {"timestamp", "level", "target", "message"}
LEVELS = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR"}


def fields_read(config_path):
    with open(config_path, "rb") as f:
        config = tomllib.load(f)
    source = config["transforms"]["basalt_parse"]["source"]
    # `line.a.b`, not inside a comment.
    code = "\n".join(l.split("#", 1)[0] for l in source.splitlines())
    found = set(re.findall(r"\bline\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)", code))
    if not found:
        sys.exit(f"{config_path}: the remap source reads no `line.<field>`: cannot check it")
    return found


def lookup(obj, path):
    for part in path.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def check_shipped(events_path, lines, require_trace, problems):
    """The events the remap program made of the server's lines."""
    with open(events_path, encoding="utf-8") as f:
        events = [json.loads(e) for e in f if e.strip()]
    if len(events) != len(lines):
        problems.append(f"{events_path}: {len(events)} events for {len(lines)} lines")
        return
    every = ["@timestamp", "message", "log.level", "log.logger", "basalt.target"]
    on_access = ["http.request.id", "http.request.method", "http.response.status_code", "url.path", "event.duration"]
    if require_trace:
        on_access.append("trace.id")
    for (n, line), event in zip(lines, events):
        if "basalt_unparsed" in (event.get("tags") or []):
            problems.append(f"line {n}: shipped as unparsed text")
            continue
        access = line.get("message") == "request" and line.get("target") == "basalt::http"
        for field in every + (on_access if access else []):
            if lookup(event, field) is None:
                problems.append(f"line {n}: the shipped event has no `{field}`: {json.dumps(event)[:160]}")
        if lookup(event, "log.level") != str(line.get("level", "")).lower():
            problems.append(f"line {n}: log.level {lookup(event, 'log.level')!r} for level {line.get('level')!r}")
    if not problems:
        print(f"  {len(events)} events from the remap program, each with {', '.join(every)}; access events with {', '.join(on_access)}")


def main():
    argv = sys.argv[1:]
    shipped = None
    if "--shipped" in argv:
        i = argv.index("--shipped")
        shipped = argv[i + 1]
        del argv[i : i + 2]
    args = [a for a in argv if not a.startswith("--")]
    require_trace = "--require-trace-id" in argv
    config_path, log_path = args
    wanted = fields_read(config_path)
    lines, problems = [], []
    with open(log_path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                problems.append(f"line {n} is not JSON: {raw[:120]!r}")
                continue
            if not isinstance(line, dict):
                problems.append(f"line {n} is not a JSON object")
                continue
            lines.append((n, line))
    access = [(n, l) for n, l in lines if l.get("message") == "request" and l.get("target") == "basalt::http"]
    if len(lines) < 5 or not access:
        problems.append(f"too few lines to check: {len(lines)} JSON lines, {len(access)} access lines")
    for n, line in lines:
        for field in EVERY_LINE:
            if field not in line:
                problems.append(f"line {n} has no `{field}`: {json.dumps(line)[:160]}")
        level = line.get("level")
        if level not in LEVELS:
            problems.append(f"line {n}: level {level!r} is not one of {sorted(LEVELS)}")
        try:
            datetime.datetime.fromisoformat(str(line.get("timestamp")).replace("Z", "+00:00"))
        except ValueError:
            problems.append(f"line {n}: timestamp {line.get('timestamp')!r} is not RFC 3339")
    checked = []
    for field in sorted(wanted - EVERY_LINE):
        if field == "trace_id" and not require_trace:
            print("  trace_id: not required yet (no tracing in telemetry.rs)")
            continue
        missing = [n for n, l in access if lookup(l, field) is None]
        if missing:
            problems.append(
                f"`line.{field}` (read by {config_path}) is missing from {len(missing)} of "
                f"{len(access)} access lines, e.g. line {missing[0]}"
            )
        checked.append(field)
    if require_trace and "trace_id" not in wanted:
        problems.append(f"{config_path} does not read line.trace_id")
    if shipped:
        check_shipped(shipped, lines, require_trace, problems)
    if problems:
        print("log check FAILED:")
        for p in problems[:30]:
            print("  " + p)
        sys.exit(1)
    print(
        f"  {len(lines)} JSON lines ({len(access)} access lines) carry every field "
        f"{config_path} reads: {', '.join(sorted(EVERY_LINE & wanted))} on each line; "
        f"{', '.join(checked)} on each access line"
    )


if __name__ == "__main__":
    main()
