#!/usr/bin/env python3
"""Checks the rendered Kubernetes manifests beyond their schema: every pod is hardened and sized,
every setting is one the programs know, each workload has the settings it needs (the producer: a
cadence that is its schedule's period, every site's interval a whole multiple of it, one pod per
shard), and a NetworkPolicy lets each workload open only the connections it needs.

    check_manifests.py RENDERED.yaml REPO [LOCATION.yaml ...]

RENDERED is the full base (`kubectl kustomize k8s`, or a kustomization adding optional components
to it); each LOCATION is the render of another location's overlay (k8s/locations/*), which must
hold the producer alone, under a name of its own, publishing to RENDERED's topic.

Run by scripts/check-shipping with the venv's python (PyYAML). Names every problem, exits 1 when
there is one.
"""
import base64, pathlib, re, sys, tomllib
from urllib.parse import urlsplit
import yaml

def load(path):
    return [d for d in yaml.safe_load_all(open(path)) if d]

docs = load(sys.argv[1])
repo = pathlib.Path(sys.argv[2])
location_paths = sys.argv[3:]
problems = []
def problem(where, what): problems.append(f"{where}: {what}")

# Settings the programs know: clap's `env = "WEBSENTRY_…"` in the sources, and their defaults.
# WEBSENTRY_LISTEN is the consumer's HTTP endpoint, being built as these manifests are written.
known, defaults = set(), {}
for path in repo.glob("*/src/**/*.rs"):
    text = path.read_text()
    known |= set(re.findall(r'env = "(WEBSENTRY_[A-Z_]+)"', text))
    defaults.update(re.findall(r'env = "(WEBSENTRY_[A-Z_]+)", default_value = "([^"]*)"', text))
pending = {"WEBSENTRY_LISTEN"} - known
MAX_SHARDS = 1000   # the producer's most shards (producer/src/slot.rs)

def pod_of(doc):
    kind, spec = doc["kind"], doc.get("spec", {})
    if kind == "Pod": return spec
    if kind == "CronJob": return spec["jobTemplate"]["spec"]["template"]["spec"]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"): return spec["template"]["spec"]
    return None

def effective(container, pod, key):
    value = (container.get("securityContext") or {}).get(key)
    return value if value is not None else (pod.get("securityContext") or {}).get(key)

def check_objects(docs, render=""):
    """Every object of one render: no committed key, only settings the programs know, every pod
    hardened and sized, a namespace that enforces it. Returns the number of pod specs."""
    pods = 0
    names = {}
    for doc in docs:
        where = f"{render}{doc['kind']}/{doc['metadata']['name']}"
        names[doc["kind"]] = names.get(doc["kind"], []) + [doc["metadata"]["name"]]
        if doc["kind"] == "Secret":
            for key, value in (doc.get("data") or {}).items():
                if b"-----BEGIN" in base64.b64decode(value):
                    problem(where, f"{key} holds PEM: a real certificate or key must never be committed")
        if doc["kind"] == "ConfigMap":
            for key in (doc.get("data") or {}):
                if key.startswith("WEBSENTRY_") and key not in known | pending:
                    problem(where, f"{key} is not a setting of any program")
        # The API server then refuses a pod that is not hardened, whatever the manifests say.
        if doc["kind"] == "Namespace":
            if (doc["metadata"].get("labels") or {}).get("pod-security.kubernetes.io/enforce") != "restricted":
                problem(where, "does not enforce the Pod Security level restricted")
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
                    problem(at, f"{env['name']} is not a setting of any program")
                if env["name"] == "WEBSENTRY_DATABASE_PASSWORD" and "value" in env:
                    problem(at, "the database password is written in the manifest, not taken from a Secret")
    if not any(d["kind"] == "Namespace" for d in docs):
        problem(f"{render}manifests", "no Namespace: nothing enforces the Pod Security level restricted")
    if pods == 0: problem(f"{render}manifests", "no pod spec at all")
    for kind, listed in sorted(names.items()):
        print(f"  {render}{kind}: {', '.join(listed)}")
    return pods

def one(docs, kind, name, render=""):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    if not found: problem(f"{render}{kind}/{name}", "missing")
    return found[0] if found else None

def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}

def setting(docs, container, name):
    """The value `name` has in the container: its own env, else the ConfigMaps of its envFrom, else
    the program's default (None when it has none)."""
    for env in container.get("env", []):
        if env["name"] == name:
            return env.get("value")
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            found = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == source["configMapRef"]["name"]]
            if found and name in (found[0].get("data") or {}):
                return found[0]["data"][name]
    return defaults.get(name)

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

# A site's `interval` as the sites file may write it: whole seconds, or text such as "90s", "5m",
# "1h 30m" (the producer reads text with humantime; this knows its common units only).
UNITS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "mins": 60,
         "minute": 60, "minutes": 60, "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
         "d": 86400, "day": 86400, "days": 86400}
def interval_seconds(written):
    if isinstance(written, int):
        return written
    parts = re.findall(r"\s*(\d+)\s*([a-z]+)", written)
    if not parts or "".join(f"{n}{u}" for n, u in parts) != re.sub(r"\s+", "", written) or any(u not in UNITS for _, u in parts):
        return None
    return sum(int(n) * UNITS[u] for n, u in parts)

def check_producer(docs, render=""):
    """The producer's CronJob: runs that never overlap, a cadence that is the schedule's period,
    and, when it is an Indexed Job, one pod per shard. Returns the CronJob, or None."""
    cron = one(docs, "CronJob", "websentry-producer", render)
    if not cron:
        return None
    where = f"{render}CronJob"
    s, job = cron["spec"], cron["spec"]["jobTemplate"]["spec"]
    if s.get("concurrencyPolicy") != "Forbid": problem(where, "concurrencyPolicy is not Forbid")
    for key in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        if key not in s: problem(where, f"{key} is missing")
    for key in ("backoffLimit", "activeDeadlineSeconds"):
        if key not in job: problem(where, f"jobTemplate {key} is missing")
    c = job["template"]["spec"]["containers"][0]
    env = env_of(c)
    sites = env.get("WEBSENTRY_SITES_FILE")
    mounts = [m["mountPath"] for m in c.get("volumeMounts", [])]
    if not sites or not any(sites.startswith(m.rstrip("/") + "/") for m in mounts):
        problem(where, "WEBSENTRY_SITES_FILE is not in a mounted volume")
    # The reports state the cadence they are scheduled on: it must be the schedule's period. A
    # one-off run probes the sites due in the period it starts in, so a run must also start and
    # end within its period.
    period = cron_period(s.get("schedule", ""))
    cadence = env.get("WEBSENTRY_CADENCE")
    if period is None:
        problem(where, f"cannot tell the period of schedule {s.get('schedule')!r}: keep it regular")
    elif cadence != str(period):
        problem(where, f"WEBSENTRY_CADENCE is {cadence!r}, the schedule {s.get('schedule')!r} runs every {period} s")
    if period is not None and job.get("activeDeadlineSeconds", period) >= period:
        problem(where, "activeDeadlineSeconds is not shorter than the schedule's period")
    if period is not None and s.get("startingDeadlineSeconds", period) >= period:
        problem(where, "startingDeadlineSeconds is not shorter than the schedule's period: a late run could "
                "start in the next period and probe that period's sites")
    # A run probes the sites due in its period, so every site's own interval must be a whole
    # multiple of it: the producer refuses to start otherwise.
    sites_map = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("websentry-sites")]
    sites_text = (sites_map[0].get("data") or {}).get("sites.toml") if sites_map else None
    if cadence is not None and cadence.isdigit() and sites_text is not None:
        for site in tomllib.loads(sites_text).get("site", []):
            if "interval" not in site:
                continue
            seconds = interval_seconds(site["interval"])
            if seconds is None:
                print(f"  note: {render}the interval {site['interval']!r} of {site.get('url')} is not checked (unknown form)")
            elif seconds % int(cadence):
                problem(where, f"{site.get('url')} has the interval {site['interval']!r}, not a whole multiple of "
                        f"WEBSENTRY_CADENCE {cadence}: the producer refuses to start")
    # Sharded: each pod of an Indexed Job probes the shard its JOB_COMPLETION_INDEX names, so every
    # shard needs its pod, and all of them run at once, within the same period.
    shards = env.get("WEBSENTRY_SHARDS")
    indexed = job.get("completionMode") == "Indexed"
    if indexed or shards is not None:
        if not indexed:
            problem(where, "WEBSENTRY_SHARDS is set but completionMode is not Indexed: no pod has a JOB_COMPLETION_INDEX")
        if "WEBSENTRY_SHARD" in env:
            problem(where, "WEBSENTRY_SHARD names one shard for every pod: an Indexed Job sets WEBSENTRY_SHARDS only")
        if shards is None:
            problem(where, "an Indexed Job without WEBSENTRY_SHARDS: every pod would probe every site")
        elif not shards.isdigit() or not 1 <= int(shards) <= MAX_SHARDS:
            problem(where, f"WEBSENTRY_SHARDS is {shards!r}, not a number of shards from 1 to {MAX_SHARDS}")
        else:
            for key, value in (("completions", job.get("completions")), ("parallelism", job.get("parallelism", 1))):
                if value != int(shards):
                    problem(where, f"jobTemplate {key} is {value!r}, WEBSENTRY_SHARDS is {shards}: "
                            "one pod per shard, all running at once")
        print(f"  {render}CronJob: an Indexed Job of {shards} shards, every {period} s")
    return cron

# ---------------------------------------------------------------- the archive side (the full base)
# The migration runs as the schema owner, the consumer as a user that may only read and write the
# archive (deploy/postgres): two users, two passwords.
def database_user(docs, container):
    user = setting(docs, container, "WEBSENTRY_DATABASE_USER")
    password = [e for e in container.get("env", []) if e["name"] == "WEBSENTRY_DATABASE_PASSWORD"]
    secret = ((password[0].get("valueFrom") or {}).get("secretKeyRef") or {}).get("name") if password else None
    return user, secret

def check_archive_side(docs):
    deploy = one(docs, "Deployment", "websentry-consumer")
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
    job = one(docs, "Job", "websentry-migrate")
    if job and "--migrate-only" not in job["spec"]["template"]["spec"]["containers"][0].get("args", []):
        problem("Job", "does not run --migrate-only")
    if job and deploy:
        migrate_user = database_user(docs, job["spec"]["template"]["spec"]["containers"][0])
        consumer_user = database_user(docs, deploy["spec"]["template"]["spec"]["containers"][0])
        if None in migrate_user or None in consumer_user:
            problem("Job", f"database user or password Secret not found (migrate {migrate_user}, consumer {consumer_user})")
        elif migrate_user[0] == consumer_user[0] or migrate_user[1] == consumer_user[1]:
            problem("Job", f"migrates as the consumer's database user {consumer_user}: the schema owner must be another user")

    # The status page: replicated, probed on its own port, and read-only by construction: the
    # read-only role with its own password Secret, and no Kafka setting or certificate at all.
    status = one(docs, "Deployment", "websentry-status")
    if status:
        where = "Deployment/websentry-status"
        pod = status["spec"]["template"]["spec"]
        c = pod["containers"][0]
        if status["spec"].get("replicas", 1) < 2:
            problem(where, f"replicas {status['spec'].get('replicas', 1)}: a status page is stateless, run at least 2")
        listen = env_of(c).get("WEBSENTRY_STATUS_LISTEN") or "0.0.0.0:8080"
        port = int(listen.rsplit(":", 1)[1])
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        if port not in ports.values():
            problem(where, f"WEBSENTRY_STATUS_LISTEN {listen} is not a declared containerPort {sorted(ports.values())}")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = (c.get(probe) or {}).get("httpGet") or {}
            if get.get("path") != path or ports.get(get.get("port"), get.get("port")) != port:
                problem(where, f"{probe} is not GET {path} on {port}")
        kafka = [e["name"] for e in c.get("env", []) if e["name"].startswith("WEBSENTRY_KAFKA_")]
        for source in c.get("envFrom", []):
            ref = (source.get("configMapRef") or source.get("secretRef") or {}).get("name", "")
            found = [d for d in docs if d["kind"] in ("ConfigMap", "Secret") and d["metadata"]["name"] == ref]
            kafka += [k for d in found for k in (d.get("data") or {}) if k.startswith("WEBSENTRY_KAFKA_")]
        if kafka:
            problem(where, f"has Kafka settings {sorted(set(kafka))}: the status page reads the archive only")
        for volume in pod.get("volumes", []):
            if (volume.get("secret") or {}).get("secretName", "").startswith("websentry-kafka-tls"):
                problem(where, "mounts the Kafka client certificate: the status page holds no Kafka credential")
        reader = database_user(docs, c)
        writers = [database_user(docs, w["spec"]["template"]["spec"]["containers"][0]) for w in (deploy, job) if w]
        if None in reader:
            problem(where, f"database user or password Secret not found ({reader})")
        for writer in writers:
            if reader[0] == writer[0] or reader[1] == writer[1]:
                problem(where, f"reads as {reader}, a writing user's or its Secret ({writer}): use the read-only role")
        service = one(docs, "Service", "websentry-status")
        if service:
            labels = status["spec"]["template"]["metadata"].get("labels") or {}
            if not service["spec"].get("selector") or not service["spec"]["selector"].items() <= labels.items():
                problem("Service/websentry-status", "its selector does not select the status page's pods")
            for p in service["spec"].get("ports", []):
                target = p.get("targetPort", p.get("port"))
                if ports.get(target, target) != port:
                    problem("Service/websentry-status", f"targetPort {target!r} is not the page's port {port}")

# ---------------------------------------------------------------- network policies
def check_network(docs, render=""):
    """Each workload's one NetworkPolicy opens exactly the ports it needs. Returns the number of
    policies."""
    def settings(name):
        found = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith(name)]
        return (found[0].get("data") or {}) if found else {}
    kafka_ports = {int(h.rsplit(":", 1)[1]) for h in settings("websentry-settings").get("WEBSENTRY_KAFKA_HOSTS", "").split(",") if ":" in h}
    database_ports = {int(settings("websentry-database-settings").get("WEBSENTRY_DATABASE_PORT", "5432"))}
    # The ports of the sites this render probes: its sites ConfigMap, as an overlay may replace it.
    site_ports = set()
    sites = settings("websentry-sites").get("sites.toml")
    if sites is None:
        problem(f"{render}ConfigMap/websentry-sites", "missing, or holds no sites.toml")
    for url in re.findall(r'^\s*url\s*=\s*"([^"]+)"', sites or "", re.M):
        parts = urlsplit(url)
        site_ports.add(parts.port or {"http": 80, "https": 443}[parts.scheme])
    DNS = {53}
    # What each workload must reach, and nothing more (the producer may also reach the web's two
    # ports, where a site's redirects lead); ingress None: it accepts no connection at all.
    needs = {
        "websentry-consumer": {"ingress": {9187}, "egress": DNS | kafka_ports | database_ports, "may": set()},
        "websentry-producer": {"ingress": None, "egress": DNS | kafka_ports | site_ports, "may": {80, 443}},
        "websentry-migrate": {"ingress": None, "egress": DNS | database_ports, "may": set()},
        "websentry-status": {"ingress": {8080}, "egress": DNS | database_ports, "may": set()},
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
        where = f"{render}{doc['kind']}/{doc['metadata']['name']}"
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
        at = f"{render}NetworkPolicy/{mine[0]['metadata']['name']}"
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
    return len(policies)

# ---------------------------------------------------------------- other locations
def check_location(docs, render, topic):
    """Another location's render: the producer alone, holding no database setting or credential,
    named literally, publishing to `topic`. Returns its name, or None."""
    workloads = [f"{d['kind']}/{d['metadata']['name']}" for d in docs if pod_of(d) is not None]
    if workloads != ["CronJob/websentry-producer"]:
        problem(f"{render}manifests", f"workloads {workloads}: another location runs the producer's CronJob alone")
    for doc in docs:
        where = f"{render}{doc['kind']}/{doc['metadata']['name']}"
        data = doc.get("data") or {}
        if doc["kind"] in ("Secret", "ConfigMap") and (
                doc["metadata"]["name"].startswith("websentry-database") or "password" in data
                or any(key.startswith("WEBSENTRY_DATABASE_") for key in data)):
            problem(where, "holds database settings or credentials: they stay at the home location")
        pod = pod_of(doc)
        for c in (pod or {}).get("containers", []):
            if any(e["name"].startswith("WEBSENTRY_DATABASE_") for e in c.get("env", [])):
                problem(f"{where} container {c['name']}", "has database settings: they stay at the home location")
    cron = [d for d in docs if d["kind"] == "CronJob" and d["metadata"]["name"] == "websentry-producer"]
    if not cron:
        return None
    c = cron[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    where = f"{render}CronJob"
    # The name must be the same on every run: a fieldRef (the node's name) splits one location's
    # reports into one series per node.
    named = [e for e in c.get("env", []) if e["name"] == "WEBSENTRY_PROBE_NAME"]
    name = named[0].get("value") if named else None
    if not named or "valueFrom" in named[0] or not (name or "").strip():
        problem(where, f"WEBSENTRY_PROBE_NAME is not a literal name ({named[0] if named else 'unset'}): "
                "each location's reports carry the location's name")
        name = None
    mine = setting(docs, c, "WEBSENTRY_KAFKA_TOPIC")
    if mine != topic:
        problem(where, f"publishes to the topic {mine!r}, the home location's consumer reads {topic!r}")
    print(f"  {render}probes as {name!r}, publishes to {mine!r}")
    return name

pods = check_objects(docs)
cron = check_producer(docs)
check_archive_side(docs)
policies = check_network(docs)
base_container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0] if cron else {}
topic = setting(docs, base_container, "WEBSENTRY_KAFKA_TOPIC")
base_name = env_of(base_container).get("WEBSENTRY_PROBE_NAME")
named = {base_name: ["the home location"]} if base_name else {}
for path in location_paths:
    render = f"{pathlib.Path(path).name}: "
    location = load(path)
    pods += check_objects(location, render)
    check_producer(location, render)
    policies += check_network(location, render)
    name = check_location(location, render, topic)
    if name is not None:
        named.setdefault(name, []).append(pathlib.Path(path).name)
for name, renders in sorted(named.items()):
    if len(renders) > 1:
        problem(f"WEBSENTRY_PROBE_NAME {name!r}", f"used by {', '.join(renders)}: two locations under one name "
                "are one series in the archive, with twice the reports")

for name in sorted(pending):
    print(f"  note: {name} is used but not yet a setting in the sources (being built)")
for p in problems: print(f"  FAIL {p}")
print(f"  {pods} pod specs and {policies} network policies checked"
      + (f", {len(location_paths)} other location{'s' if len(location_paths) > 1 else ''}" if location_paths else "")
      + f": {'hardened and complete' if not problems else f'{len(problems)} problems'}")
sys.exit(1 if problems else 0)
