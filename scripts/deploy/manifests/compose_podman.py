#!/usr/bin/env python3
"""Prints the `podman run` arguments of one service of a resolved Compose
model (`docker-compose config` output), one per line: the settings Compose
would apply to that container (read_only, user, cap_drop, security_opt,
tmpfs, environment, secrets as read-only file mounts under /run/secrets,
stop signal, command), so that compose-run.sh runs the real image exactly as
compose.yaml configures it. Overrides (NAME=VALUE) replace environment
values, for what must differ on a host network (the listen address).

Usage: compose_podman.py RESOLVED.yaml SERVICE [NAME=VALUE ...]
"""

import sys

import yaml


def main():
    path, name, *overrides = sys.argv[1:]
    doc = yaml.safe_load(open(path))
    svc = doc["services"][name]
    secrets = doc.get("secrets") or {}
    args = []
    if svc.get("read_only"):
        args.append("--read-only")
    if svc.get("user"):
        args += ["--user", str(svc["user"])]
    for cap in svc.get("cap_drop") or []:
        args += ["--cap-drop", cap]
    for opt in svc.get("security_opt") or []:
        args += ["--security-opt", opt.replace(":true", "")]
    for t in svc.get("tmpfs") or []:
        args += ["--tmpfs", t]
    if svc.get("stop_signal"):
        args += ["--stop-signal", svc["stop_signal"]]
    env = dict(svc.get("environment") or {})
    for o in overrides:
        k, _, v = o.partition("=")
        env[k] = v
    for k, v in env.items():
        args += ["-e", f"{k}={'' if v is None else v}"]
    for s in svc.get("secrets") or []:
        source = s["source"]
        target = s.get("target") or source
        if not target.startswith("/"):
            target = f"/run/secrets/{target}"
        args += ["-v", f"{secrets[source]['file']}:{target}:ro"]
    print("\n".join(args))
    print("--")
    print("\n".join(svc.get("command") or []))


if __name__ == "__main__":
    main()
