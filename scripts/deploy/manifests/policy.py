#!/usr/bin/env python3
"""What a schema cannot check in the deployment files, checked on what the
tools resolved (docker-compose's merged model, kustomize's rendering, the
systemd unit with its environment file):

- secrets are files, never environment values, and every `*_FILE` variable
  names a file that is really mounted there;
- the security settings the README promises are on every Basalt container;
- references between objects resolve (depends_on, selectors, Services,
  ConfigMaps, Secrets);
- Basalt itself accepts each container's environment: `basalt config print`
  runs with exactly that environment, the secret files in place, and must
  exit 0 with nothing on stderr (an unknown or misspelt BASALT_* variable,
  a bad value or an unreadable *_FILE fails).

Usage (scripts/deploy/manifests.sh runs it):
  policy.py compose RESOLVED_COMPOSE_YAML [--basalt BIN]
  policy.py k8s RENDERED_YAML [--external-secret NAME ...] [--basalt BIN]
  policy.py systemd UNIT ENV_FILE [--basalt BIN]
Prints one line per problem and exits 1 if there is any.
"""

import argparse
import base64
import os
import re
import subprocess
import sys
import tempfile

import yaml

UID = 10001
# Environment names that carry a secret when given as a value.
SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|_PASS$|TOKEN|SECRET|PRIVATE_KEY|"
    r"DATABASE_URL$|REDIS_URL$|AMQP_URL$|SMTP_URL$)"
)
# Sample values for secrets a render does not contain (created out of band).
SAMPLES = {
    "database_url": "postgres://basalt:sample@postgres:5432/basalt",
    "redis_url": "redis://:sample@redis:6379/0",
    "amqp_url": "amqp://basalt:sample@rabbitmq:5672/%2f",
    "smtp_url": "smtps://basalt:sample@mail.example.com:465",
    "metrics_token": "sample-metrics-token-0123456789abcdef",
}

problems = []
# Secret files written for `basalt config print`; removed at exit.
WORKDIR = tempfile.TemporaryDirectory(prefix="basalt-policy-")
accepted = []  # the environments basalt config print accepted


def problem(where, text):
    problems.append(f"{where}: {text}")


def is_secret_value_var(name):
    """A variable that would hold a secret itself (not a *_FILE path)."""
    if name.endswith("_FILE") or name.endswith("__FILE"):
        return False
    # The key itself, not its section (BASALT_IDENTITY__PASSWORDS__... is not a password).
    return bool(SECRET_NAME.search(name.rsplit("__", 1)[-1]))


def config_print(where, basalt, env, workdir):
    """Runs `basalt config print` with exactly `env`; it must succeed quietly."""
    if not basalt:
        return
    run = subprocess.run(
        [basalt, "config", "print"],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if run.returncode != 0 or run.stderr.strip():
        problem(where, f"basalt config print: exit {run.returncode}: {run.stderr.strip()}")
        return
    # The secrets were read from their files: printed redacted.
    if "[redacted]" not in run.stdout and any(
        k.startswith("BASALT_") and k.endswith("_FILE") for k in env
    ):
        problem(where, "basalt config print shows no redacted secret")
        return
    accepted.append(where)


# --- Compose ---------------------------------------------------------------------


def check_compose(path, basalt):
    doc = yaml.safe_load(open(path))
    services = doc.get("services") or {}
    top_secrets = doc.get("secrets") or {}
    for name, spec in top_secrets.items():
        file = spec.get("file")
        if file and not os.path.isfile(file):
            problem(f"secrets.{name}", f"file {file} does not exist")
    workdir = WORKDIR.name
    for name, svc in services.items():
        where = f"services.{name}"
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        mounted = {}
        for s in svc.get("secrets") or []:
            source = s["source"] if isinstance(s, dict) else s
            target = (s.get("target") if isinstance(s, dict) else None) or source
            if source not in top_secrets:
                problem(where, f"secret {source} is not defined at the top level")
                continue
            if not target.startswith("/"):
                target = f"/run/secrets/{target}"
            mounted[target] = top_secrets[source].get("file")
        for var, value in env.items():
            if is_secret_value_var(var):
                problem(where, f"{var} holds a secret as a plain value; use {var}_FILE and a secret")
            if (var.endswith("_FILE") or var.endswith("__FILE")) and value not in mounted:
                problem(where, f"{var}={value} is not a mounted secret of this service")
        for dep in svc.get("depends_on") or {}:
            if dep not in services:
                problem(where, f"depends_on {dep}: no such service")
        if svc.get("image", "").startswith("basalt"):
            check_compose_basalt(where, name, svc, services)
            real_env = {
                k: (mounted.get(v) or v) if isinstance(v, str) else str(v)
                for k, v in env.items()
            }
            config_print(where, basalt, real_env, workdir)


def check_compose_basalt(where, name, svc, services):
    if svc.get("read_only") is not True:
        problem(where, "read_only must be true")
    if str(svc.get("user", "")) != f"{UID}:{UID}":
        problem(where, f"user must be {UID}:{UID}")
    if "ALL" not in (svc.get("cap_drop") or []):
        problem(where, "cap_drop must include ALL")
    if not any("no-new-privileges" in o for o in svc.get("security_opt") or []):
        problem(where, "security_opt must include no-new-privileges")
    command = svc.get("command") or []
    if command == ["serve"]:
        deps = svc.get("depends_on") or {}
        migrate = deps.get("migrate") or {}
        if migrate.get("condition") != "service_completed_successfully":
            problem(where, "a serving node must wait for migrate (service_completed_successfully)")
        env = svc.get("environment") or {}
        if str(env.get("BASALT_DATABASE__MIGRATE_ON_START", "")).lower() != "false":
            problem(where, "BASALT_DATABASE__MIGRATE_ON_START must be false (migrate owns the schema)")
        if env.get("BASALT_ROLE") not in ("api", "worker"):
            problem(where, "BASALT_ROLE must be api or worker")
    elif command == ["migrate"]:
        if (svc.get("restart") or "no") != "no":
            problem(where, "the one-shot migrate service must not restart")
    else:
        problem(where, f"unexpected command {command}")


# --- Kubernetes --------------------------------------------------------------------


def pod_templates(docs):
    for d in docs:
        kind = d.get("kind")
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield d, d["spec"]["template"]
        elif kind == "CronJob":
            yield d, d["spec"]["jobTemplate"]["spec"]["template"]


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def check_k8s(path, external, basalt):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    configmaps = by_kind.get("ConfigMap", {})
    secrets = by_kind.get("Secret", {})
    for name, s in secrets.items():
        if name in external:
            problem(f"Secret/{name}", "must not be in this rendering (created out of band)")
    workdir = WORKDIR.name
    for owner, tpl in pod_templates(docs):
        where = f"{owner['kind']}/{owner['metadata']['name']}"
        spec = tpl["spec"]
        labels = tpl["metadata"].get("labels") or {}
        if owner["kind"] != "Job" and not selects(owner["spec"]["selector"].get("matchLabels"), labels):
            problem(where, "selector does not match the pod template's labels")
        if spec.get("enableServiceLinks") is not False:
            problem(where, "enableServiceLinks must be false (service-link BASALT_* variables)")
        if spec.get("automountServiceAccountToken") is not False:
            problem(where, "automountServiceAccountToken must be false")
        psc = spec.get("securityContext") or {}
        if psc.get("runAsNonRoot") is not True or psc.get("runAsUser") != UID or psc.get("runAsGroup") != UID:
            problem(where, f"pod securityContext must run as non-root {UID}:{UID}")
        if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problem(where, "seccompProfile must be RuntimeDefault")
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        for v in volumes.values():
            sname = (v.get("secret") or {}).get("secretName")
            if sname and sname not in secrets and sname not in external:
                problem(where, f"volume {v['name']}: Secret {sname} is neither rendered nor declared external")
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            cw = f"{where} container {c['name']}"
            sc = c.get("securityContext") or {}
            if sc.get("allowPrivilegeEscalation") is not False:
                problem(cw, "allowPrivilegeEscalation must be false")
            if sc.get("readOnlyRootFilesystem") is not True:
                problem(cw, "readOnlyRootFilesystem must be true")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                problem(cw, "capabilities must drop ALL")
            res = c.get("resources") or {}
            for k in ("cpu", "memory"):
                if k not in (res.get("requests") or {}):
                    problem(cw, f"resources.requests.{k} missing")
            if "memory" not in (res.get("limits") or {}):
                problem(cw, "resources.limits.memory missing")
            if owner["kind"] == "Deployment":
                probes = {
                    "startupProbe": "/healthz",
                    "livenessProbe": "/healthz",
                    "readinessProbe": "/readyz",
                }
                for probe, want in probes.items():
                    got = ((c.get(probe) or {}).get("httpGet") or {}).get("path")
                    if got != want:
                        problem(cw, f"{probe} must GET {want} (has {got})")
            # The container's environment, as Basalt would see it.
            env = {}
            for src in c.get("envFrom") or []:
                ref = (src.get("configMapRef") or {}).get("name")
                if ref:
                    if ref not in configmaps:
                        problem(cw, f"envFrom ConfigMap {ref} is not rendered")
                        continue
                    env.update(configmaps[ref].get("data") or {})
            for e in c.get("env") or []:
                if "value" in e:
                    env[e["name"]] = e["value"]
                elif "valueFrom" in e:
                    env[e["name"]] = "<from " + ",".join(e["valueFrom"]) + ">"
            for var, value in env.items():
                if is_secret_value_var(var):
                    problem(cw, f"{var} holds a secret as an environment value; use {var}_FILE")
            # *_FILE paths must be under a mounted Secret; write its files.
            mounts = {}
            for m in c.get("volumeMounts") or []:
                v = volumes.get(m["name"])
                if v is None:
                    problem(cw, f"volumeMount {m['name']} has no volume")
                    continue
                if "secret" in v:
                    mounts[m["mountPath"].rstrip("/")] = v["secret"]["secretName"]
            real = {}
            for var, value in env.items():
                real[var] = value
                if not var.endswith("_FILE"):
                    continue
                d, _, key = value.rpartition("/")
                sname = mounts.get(d)
                if sname is None:
                    problem(cw, f"{var}={value} is not under a mounted Secret")
                    continue
                if sname in secrets:
                    s = secrets[sname]
                    data = dict(s.get("stringData") or {})
                    if key not in data and key in (s.get("data") or {}):
                        data[key] = base64.b64decode(s["data"][key]).decode()
                    if key not in data:
                        problem(cw, f"{var}: Secret {sname} has no key {key}")
                        continue
                    content = data[key]
                elif key in SAMPLES:
                    content = SAMPLES[key]
                else:
                    problem(cw, f"{var}: no sample value for external secret key {key}")
                    continue
                fdir = os.path.join(workdir, f"{owner['metadata']['name']}-{c['name']}-{sname}")
                os.makedirs(fdir, exist_ok=True)
                with open(os.path.join(fdir, key), "w") as f:
                    f.write(content)
                real[var] = os.path.join(fdir, key)
            config_print(cw, basalt, real, workdir)
    check_k8s_references(by_kind, docs)


def check_k8s_references(by_kind, docs):
    pods = [(o, t["metadata"].get("labels") or {}) for o, t in pod_templates(docs)]
    deployments = by_kind.get("Deployment", {})
    for name, svc in by_kind.get("Service", {}).items():
        sel = svc["spec"].get("selector")
        if not any(selects(sel, labels) for o, labels in pods if o["kind"] == "Deployment"):
            problem(f"Service/{name}", f"selector {sel} matches no Deployment's pods")
    for name, pdb in by_kind.get("PodDisruptionBudget", {}).items():
        sel = pdb["spec"]["selector"].get("matchLabels")
        if not any(selects(sel, labels) for o, labels in pods if o["kind"] == "Deployment"):
            problem(f"PodDisruptionBudget/{name}", f"selector {sel} matches no Deployment's pods")
    for name, hpa in by_kind.get("HorizontalPodAutoscaler", {}).items():
        ref = hpa["spec"]["scaleTargetRef"]
        target = deployments.get(ref["name"]) if ref["kind"] == "Deployment" else None
        if target is None:
            problem(f"HorizontalPodAutoscaler/{name}", f"target {ref['kind']}/{ref['name']} is not rendered")
        elif "replicas" in target["spec"]:
            problem(f"Deployment/{ref['name']}", "sets replicas although an HPA scales it")
    for name, ing in by_kind.get("Ingress", {}).items():
        for rule in ing["spec"].get("rules") or []:
            for p in (rule.get("http") or {}).get("paths") or []:
                svc = p["backend"]["service"]["name"]
                port = p["backend"]["service"]["port"].get("name")
                s = by_kind.get("Service", {}).get(svc)
                if s is None:
                    problem(f"Ingress/{name}", f"backend Service {svc} is not rendered")
                elif port and port not in [q.get("name") for q in s["spec"]["ports"]]:
                    problem(f"Ingress/{name}", f"Service {svc} has no port named {port}")
    for name, job in by_kind.get("Job", {}).items():
        args = job["spec"]["template"]["spec"]["containers"][0].get("args")
        if args != ["migrate"]:
            problem(f"Job/{name}", f"runs {args}, not basalt migrate")
    check_pre_deploy(by_kind, docs)


PRE = "basalt.dev/rollout"


def check_pre_deploy(by_kind, docs):
    """The first apply (`-l basalt.dev/rollout=pre-deploy`) must create the
    migration Job and everything it needs, and roll nothing."""
    def labelled(d):
        return (d["metadata"].get("labels") or {}).get(PRE) == "pre-deploy"

    jobs = [d for d in docs if d["kind"] == "Job"]
    if not jobs:
        problem("migration", "no Job in the rendering")
    for job in jobs:
        where = f"Job/{job['metadata']['name']}"
        if not labelled(job):
            problem(where, f"lacks the label {PRE}=pre-deploy")
        spec = job["spec"]["template"]["spec"]
        needs = [("ServiceAccount", spec.get("serviceAccountName"))]
        for c in spec["containers"]:
            needs += [("ConfigMap", (e.get("configMapRef") or {}).get("name")) for e in c.get("envFrom") or []]
        needs += [("Secret", (v.get("secret") or {}).get("secretName")) for v in spec.get("volumes") or []]
        ns = job["metadata"].get("namespace")
        if ns:
            needs.append(("Namespace", ns))
        for kind, name in needs:
            obj = by_kind.get(kind, {}).get(name) if name else None
            if name and obj is not None and not labelled(obj):
                problem(where, f"needs {kind}/{name}, which lacks the label {PRE}=pre-deploy")
    for d in docs:
        if d["kind"] in ("Deployment", "HorizontalPodAutoscaler", "Service", "Ingress") and labelled(d):
            problem(f"{d['kind']}/{d['metadata']['name']}", "must not be applied before the migration")


# --- systemd -----------------------------------------------------------------------


def parse_env_lines(lines):
    env = {}
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith(";"):
            continue
        k, sep, v = line.partition("=")
        if not sep:
            problem("environment file", f"not NAME=value: {line}")
            continue
        env[k.strip()] = v.strip()
    return env


def check_systemd(unit, envfile, basalt):
    env = {}
    credentials = None
    for raw in open(unit):
        line = raw.strip()
        if line.startswith("Environment="):
            env.update(parse_env_lines([line[len("Environment=") :]]))
        if line.startswith("LoadCredential="):
            credentials = line[len("LoadCredential=") :].split(":", 1)[0]
    env.update(parse_env_lines(open(envfile)))  # EnvironmentFile= wins
    unit_name = os.path.basename(unit)
    credir = f"/run/credentials/{unit_name}/"
    workdir = WORKDIR.name
    real = {}
    for var, value in env.items():
        real[var] = value
        if is_secret_value_var(var):
            problem(envfile, f"{var} holds a secret as a value; use a credential and {var}_FILE")
        if not var.endswith("_FILE"):
            continue
        if not value.startswith(credir):
            problem(envfile, f"{var}={value} is not a credential of {unit_name} ({credir}...)")
            continue
        cred = value[len(credir) :]
        prefix = f"{credentials}_" if credentials else ""
        if not credentials or not cred.startswith(prefix):
            problem(envfile, f"{var}: {cred} is not loaded by LoadCredential={credentials}:...")
            continue
        key = cred[len(prefix) :]
        if key not in SAMPLES:
            problem(envfile, f"{var}: no sample value for credential {key}")
            continue
        path = os.path.join(workdir, cred)
        with open(path, "w") as f:
            f.write(SAMPLES[key])
        real[var] = path
    config_print(envfile, basalt, real, workdir)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["compose", "k8s", "systemd"])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--basalt")
    ap.add_argument("--external-secret", action="append", default=[])
    a = ap.parse_args()
    if a.mode == "compose":
        check_compose(a.files[0], a.basalt)
    elif a.mode == "k8s":
        check_k8s(a.files[0], set(a.external_secret), a.basalt)
    else:
        check_systemd(a.files[0], a.files[1], a.basalt)
    for p in problems:
        print(f"  {p}")
    if a.basalt:
        print(f"  basalt config print accepted {len(accepted)} environment(s): {', '.join(accepted)}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
