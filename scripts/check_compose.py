#!/usr/bin/env python3
"""Checks compose.yaml beyond its schema: every service is there, Websentry's containers are
hardened and built from the Dockerfile, and the broker's only listener that other containers can
reach is the one that requires client certificates.

    check_compose.py COMPOSE.yaml KAFKA-START.sh

Run by scripts/check-shipping with the venv's python (PyYAML). Names every problem, exits 1 when
there is one.
"""
import re
import sys

import yaml

compose = yaml.safe_load(open(sys.argv[1]))
kafka_start = open(sys.argv[2]).read()
services, problems = compose["services"], []

for name in ("certs", "kafka", "topic", "postgres", "migrate", "reader", "consumer", "producer", "status"):
    if name not in services:
        problems.append(f"service {name} is missing")
for name in ("migrate", "consumer", "producer", "status"):
    s = services.get(name, {})
    if s.get("read_only") is not True or "ALL" not in s.get("cap_drop", []):
        problems.append(f"{name} is not read_only with all capabilities dropped")
    if s.get("build", {}).get("target") not in ("producer", "consumer", "status"):
        problems.append(f"{name} is not built from the Dockerfile's stages")
    if "network_mode" in s:
        problems.append(f"{name} has network_mode {s['network_mode']!r}: it would share another container's network")

# The status page reads the archive only: the read-only role, no Kafka setting, no client key.
status = services.get("status", {})
environment = status.get("environment") or {}
if environment.get("WEBSENTRY_DATABASE_USER") != "websentry_reader":
    problems.append(f"status reads as {environment.get('WEBSENTRY_DATABASE_USER')!r}, not the read-only role websentry_reader")
if any(key.startswith("WEBSENTRY_KAFKA_") for key in environment):
    problems.append("status has Kafka settings: it reads the archive only")
for volume in status.get("volumes", []):
    if str(volume).split(":")[0] in ("pki-client", "pki-kafka", "pki-ca", "pki-postgres"):
        problems.append(f"status mounts {volume}: it needs the database's CA only (pki-reader)")
if "reader" not in (status.get("depends_on") or {}):
    problems.append("status does not wait for the reader role to be set up")

# The broker's listeners: every one but the mutual-TLS listener is bound to the container's loopback.
properties = dict(re.findall(r"^([a-z.]+)=(.*)$", kafka_start, re.M))
protocols = dict(p.split(":", 1) for p in properties.get("listener.security.protocol.map", "").split(",") if ":" in p)
if properties.get("ssl.client.auth") != "required":
    problems.append("the broker does not require client certificates (ssl.client.auth)")
listeners = [l for l in properties.get("listeners", "").split(",") if l]
if not listeners:
    problems.append("no listeners= in the broker's configuration")
for listener in listeners:
    name, _, address = listener.partition("://")
    host = address.rsplit(":", 1)[0]
    if protocols.get(name, name) == "SSL":
        continue
    if host not in ("localhost", "127.0.0.1", "[::1]"):
        problems.append(f"the broker's {protocols.get(name, name)} listener {listener} is reachable from other containers: bind it to localhost")
for name, service in services.items():
    if name in ("kafka", "topic"):
        continue
    text = yaml.safe_dump(service)
    if re.search(r"kafka:(9092|9094)\b", text):
        problems.append(f"{name} uses a plaintext listener of the broker")
if "kafka:9092" in yaml.safe_dump(services.get("topic", {})) or services.get("topic", {}).get("network_mode") != "service:kafka":
    problems.append("topic does not create the topic from inside the broker's network namespace")

for p in problems:
    print(f"  FAIL {p}")
print(f"  compose services: {', '.join(services)}; broker listeners: {', '.join(listeners)}")
sys.exit(1 if problems else 0)
