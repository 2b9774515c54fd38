#!/usr/bin/env python3
"""Checks the rendered Kubernetes manifests beyond their schema: every pod is hardened and sized,
every setting is one the programs know, each workload has the settings it needs, and a
NetworkPolicy lets each workload open only the connections it needs.

    check_manifests.py RENDERED.yaml REPO

Run by scripts/check-shipping with the venv's python (PyYAML) on `kubectl kustomize k8s`. Names
every problem, exits 1 when there is one.
"""
import base64, pathlib, re, sys
import yaml

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
repo = pathlib.Path(sys.argv[2])
problems = []
def problem(where, what): problems.append(f"{where}: {what}")

# Settings the programs know: clap's `env = "WEBSENTRY_…"` in the sources. WEBSENTRY_LISTEN is the
# consumer's HTTP endpoint, being built as these manifests are written.
known = set()
for path in repo.glob("*/src/**/*.rs"):
    known |= set(re.findall(r'env = "(WEBSENTRY_[A-Z_]+)"', path.read_text()))
pending = {"WEBSENTRY_LISTEN"} - known

def pod_of(doc):
    kind, spec = doc["kind"], doc.get("spec", {})
    if kind == "Pod": return spec
    if kind == "CronJob": return spec["jobTemplate"]["spec"]["template"]["spec"]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"): return spec["template"]["spec"]
    return None

def effective(container, pod, key):
    value = (container.get("securityContext") or {}).get(key)
    return value if value is not None else (pod.get("securityContext") or {}).get(key)

pods = 0
names = {}
for doc in docs:
    where = f"{doc['kind']}/{doc['metadata']['name']}"
    names[doc["kind"]] = names.get(doc["kind"], []) + [doc["metadata"]["name"]]
    if doc["kind"] == "Secret":
        for key, value in (doc.get("data") or {}).items():
            if b"-----BEGIN" in base64.b64decode(value):
                problem(where, f"{key} holds PEM: a real certificate or key must never be committed")
    if doc["kind"] == "ConfigMap":
        for key in (doc.get("data") or {}):
            if key.startswith("WEBSENTRY_") and key not in known | pending:
                problem(where, f"{key} is not a setting of either program")
    pod = pod_of(doc)
    if pod is None:
        continue
    pods += 1
    if pod.get("automountServiceAccountToken") is not False:
        problem(where, "automountServiceAccountToken is not false")
    for c in pod.get("initContainers", []) + pod.get("containers", []):
        at = f"{where} container {c['name']}"
        sc = c.get("securityContext") or {}
        if effective(c, pod, "runAsNonRoot") is not True: problem(at, "runAsNonRoot is not true")
        if effective(c, pod, "runAsUser") in (None, 0): problem(at, "runAsUser is unset or 0")
        if sc.get("readOnlyRootFilesystem") is not True: problem(at, "readOnlyRootFilesystem is not true")
        if sc.get("allowPrivilegeEscalation") is not False: problem(at, "allowPrivilegeEscalation is not false")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []): problem(at, "capabilities do not drop ALL")
        if (effective(c, pod, "seccompProfile") or {}).get("type") != "RuntimeDefault":
            problem(at, "seccompProfile is not RuntimeDefault")
        res = c.get("resources") or {}
        for part in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in (res.get(part) or {}): problem(at, f"resources.{part}.{r} is missing")
        for env in c.get("env", []):
            if env["name"].startswith("WEBSENTRY_") and env["name"] not in known | pending:
                problem(at, f"{env['name']} is not a setting of either program")
            if env["name"] == "WEBSENTRY_DATABASE_PASSWORD" and "value" in env:
                problem(at, "the database password is written in the manifest, not taken from a Secret")

def one(kind, name):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    if not found: problem(f"{kind}/{name}", "missing")
    return found[0] if found else None

def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}

def cron_period(schedule):
    """The period in seconds of a cron schedule that repeats evenly, or None: "*/N * * * *",
    "* * * * *", "M1,M2,… * * * *" evenly spaced, "M * * * *", "M */N * * *", "M H * * *"."""
    fields = schedule.split()
    if len(fields) != 5 or fields[2:] != ["*", "*", "*"]:
        return None
    minute, hour = fields[0], fields[1]
    def spacing(text, whole):
        if text == "*": return 1
        if text.startswith("*/") and text[2:].isdigit() and int(text[2:]) and whole % int(text[2:]) == 0:
            return int(text[2:])
        values = text.split(",")
        if all(v.isdigit() and int(v) < whole for v in values):
            points = sorted(int(v) for v in values)
            gaps = {(b - a) % whole or whole for a, b in zip(points, points[1:] + points[:1])}
            return gaps.pop() if len(gaps) == 1 else None
        return None
    if hour == "*":
        step = spacing(minute, 60)
        return step * 60 if step else None
    if not minute.isdigit():
        return None
    step = spacing(hour, 24)
    return step * 3600 if step else None

cron = one("CronJob", "websentry-producer")
if cron:
    s, job = cron["spec"], cron["spec"]["jobTemplate"]["spec"]
    if s.get("concurrencyPolicy") != "Forbid": problem("CronJob", "concurrencyPolicy is not Forbid")
    for key in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        if key not in s: problem("CronJob", f"{key} is missing")
    for key in ("backoffLimit", "activeDeadlineSeconds"):
        if key not in job: problem("CronJob", f"jobTemplate {key} is missing")
    c = job["template"]["spec"]["containers"][0]
    sites = env_of(c).get("WEBSENTRY_SITES_FILE")
    mounts = [m["mountPath"] for m in c.get("volumeMounts", [])]
    if not sites or not any(sites.startswith(m.rstrip("/") + "/") for m in mounts):
        problem("CronJob", "WEBSENTRY_SITES_FILE is not in a mounted volume")
    # The reports state the cadence they are scheduled on: it must be the schedule's period.
    period = cron_period(s.get("schedule", ""))
    cadence = env_of(c).get("WEBSENTRY_CADENCE")
    if period is None:
        problem("CronJob", f"cannot tell the period of schedule {s.get('schedule')!r}: keep it regular")
    elif cadence != str(period):
        problem("CronJob", f"WEBSENTRY_CADENCE is {cadence!r}, the schedule {s.get('schedule')!r} runs every {period} s")
    if period is not None and job.get("activeDeadlineSeconds", period) >= period:
        problem("CronJob", "activeDeadlineSeconds is not shorter than the schedule's period")
deploy = one("Deployment", "websentry-consumer")
if deploy:
    pod = deploy["spec"]["template"]["spec"]
    c = pod["containers"][0]
    if env_of(c).get("WEBSENTRY_CONSUMER_ENABLE_DAEMON") != "true": problem("Deployment", "not a daemon")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = (c.get(probe) or {}).get("httpGet") or {}
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        port = ports.get(get.get("port"), get.get("port"))
        if get.get("path") != path or port != 9187: problem("Deployment", f"{probe} is not GET {path} on 9187")
    if pod.get("terminationGracePeriodSeconds", 30) < 45:
        problem("Deployment", "terminationGracePeriodSeconds is not longer than a batch (45 s)")
job = one("Job", "websentry-migrate")
if job and "--migrate-only" not in job["spec"]["template"]["spec"]["containers"][0].get("args", []):
    problem("Job", "does not run --migrate-only")

# The migration runs as the schema owner, the consumer as a user that may only read and write the
# archive (deploy/postgres): two users, two passwords.
def database_user(container):
    user = env_of(container).get("WEBSENTRY_DATABASE_USER")
    for source in container.get("envFrom", []):
        if user is None and "configMapRef" in source:
            found = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == source["configMapRef"]["name"]]
            user = (found[0].get("data") or {}).get("WEBSENTRY_DATABASE_USER") if found else None
    password = [e for e in container.get("env", []) if e["name"] == "WEBSENTRY_DATABASE_PASSWORD"]
    secret = ((password[0].get("valueFrom") or {}).get("secretKeyRef") or {}).get("name") if password else None
    return user, secret
if job and deploy:
    migrate_user = database_user(job["spec"]["template"]["spec"]["containers"][0])
    consumer_user = database_user(deploy["spec"]["template"]["spec"]["containers"][0])
    if None in migrate_user or None in consumer_user:
        problem("Job", f"database user or password Secret not found (migrate {migrate_user}, consumer {consumer_user})")
    elif migrate_user[0] == consumer_user[0] or migrate_user[1] == consumer_user[1]:
        problem("Job", f"migrates as the consumer's database user {consumer_user}: the schema owner must be another user")

# ---------------------------------------------------------------- network policies
def settings(name):
    found = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith(name)]
    return (found[0].get("data") or {}) if found else {}
kafka_ports = {int(h.rsplit(":", 1)[1]) for h in settings("websentry-settings").get("WEBSENTRY_KAFKA_HOSTS", "").split(",") if ":" in h}
database_ports = {int(settings("websentry-database-settings").get("WEBSENTRY_DATABASE_PORT", "5432"))}
site_ports = set()
sites = repo / "k8s" / "sites.toml"
for url in re.findall(r'^\s*url\s*=\s*"([^"]+)"', sites.read_text(), re.M):
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    site_ports.add(parts.port or {"http": 80, "https": 443}[parts.scheme])
DNS = {53}
# What each workload must reach, and nothing more (the producer may also reach the web's two ports,
# where a site's redirects lead); ingress None: it accepts no connection at all.
needs = {
    "websentry-consumer": {"ingress": {9187}, "egress": DNS | kafka_ports | database_ports, "may": set()},
    "websentry-producer": {"ingress": None, "egress": DNS | kafka_ports | site_ports, "may": {80, 443}},
    "websentry-migrate": {"ingress": None, "egress": DNS | database_ports, "may": set()},
}
policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
def rule_ports(rule, where):
    ports = set()
    if not rule.get("ports"):
        problem(where, "a rule allows every port")
    for p in rule.get("ports") or []:
        if not isinstance(p.get("port"), int) or "endPort" in p:
            problem(where, f"port {p.get('port')!r} is not one numbered port")
        else:
            ports.add(p["port"])
    return ports
for doc in docs:
    pod = pod_of(doc)
    if pod is None:
        continue
    where = f"{doc['kind']}/{doc['metadata']['name']}"
    template = doc["spec"]["jobTemplate"]["spec"]["template"] if doc["kind"] == "CronJob" else doc["spec"].get("template", doc)
    labels = (template.get("metadata") or {}).get("labels") or {}
    mine = [p for p in policies if (p["spec"].get("podSelector") or {}).get("matchLabels")
            and p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()]
    if not mine:
        problem(where, "no NetworkPolicy selects its pods")
        continue
    if len(mine) > 1:
        problem(where, f"{len(mine)} NetworkPolicies select its pods: keep one, so it tells the whole story")
    policy = mine[0]["spec"]
    at = f"NetworkPolicy/{mine[0]['metadata']['name']}"
    if set(policy.get("policyTypes") or []) != {"Ingress", "Egress"}:
        problem(at, f"policyTypes {policy.get('policyTypes')} is not both Ingress and Egress")
    need = needs.get(doc["metadata"]["name"])
    if need is None:
        problem(where, "no network needs are known for this workload (add it to check_manifests.py)")
        continue
    ingress = set()
    for rule in policy.get("ingress") or []:
        ingress |= rule_ports(rule, at + " ingress")
    if need["ingress"] is None and policy.get("ingress"):
        problem(at, f"accepts connections (ports {sorted(ingress)}); this workload serves nothing")
    elif need["ingress"] is not None and ingress != need["ingress"]:
        problem(at, f"ingress ports {sorted(ingress)}, not exactly {sorted(need['ingress'])}")
    egress = set()
    for rule in policy.get("egress") or []:
        egress |= rule_ports(rule, at + " egress")
        if not rule.get("to"):
            problem(at, "an egress rule allows every destination")
    if not need["egress"] <= egress <= need["egress"] | need["may"]:
        problem(at, f"egress ports {sorted(egress)}, not {sorted(need['egress'])}" + (f" (and maybe {sorted(need['may'])})" if need["may"] else "")
                + f": DNS, brokers {sorted(kafka_ports)}, database {sorted(database_ports)}, sites {sorted(site_ports)}, as this workload needs")

if pods == 0: problem("manifests", "no pod spec at all")
for kind, listed in sorted(names.items()):
    print(f"  {kind}: {', '.join(listed)}")
for name in sorted(pending):
    print(f"  note: {name} is used but not yet a setting in the sources (being built)")
for p in problems: print(f"  FAIL {p}")
print(f"  {pods} pod specs and {len(policies)} network policies checked: {'hardened and complete' if not problems else f'{len(problems)} problems'}")
sys.exit(1 if problems else 0)

