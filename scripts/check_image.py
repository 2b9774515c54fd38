#!/usr/bin/env python3
"""Inspects an image saved by `podman save --format oci-archive`: exactly one layer holding exactly
one file, the program, mode 0555; run as the numeric user 65532 through that program; the OCI
labels; a size limit on the files (what `podman images` shows; the compressed size, what a registry
moves, is printed too).

    check_image.py ARCHIVE PROGRAM MAX_BYTES      e.g. target/websentry-producer.oci.tar websentry-producer 8388608

Run by scripts/check-shipping with the venv's python. Prints what it found, names every problem,
exits 1 when there is one.
"""
import json
import sys
import tarfile

archive, program, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
problems = []
LABELS = ("title", "description", "version", "licenses", "source")

with tarfile.open(archive) as outer:
    def blob(digest):
        algorithm, hex_digest = digest.split(":", 1)
        return outer.extractfile(f"blobs/{algorithm}/{hex_digest}")

    index = json.load(outer.extractfile("index.json"))
    if len(index["manifests"]) != 1:
        problems.append(f"{len(index['manifests'])} manifests in the archive, not 1")
    manifest = json.load(blob(index["manifests"][0]["digest"]))
    config = json.load(blob(manifest["config"]["digest"]))
    run = config.get("config") or {}

    layers = manifest["layers"]
    if len(layers) != 1:
        problems.append(f"{len(layers)} layers, not 1")
    files, size = [], 0
    for layer in layers:
        size += layer["size"]
        with tarfile.open(fileobj=blob(layer["digest"]), mode="r|*") as tar:
            for member in tar:
                if member.isdir():
                    continue
                files.append(member)

if [f.name.lstrip("./") for f in files] != [program]:
    problems.append(f"the image holds {[f.name for f in files]}, not only /{program}")
for f in files:
    if not f.isfile():
        problems.append(f"/{f.name} is not a regular file")
    elif f.mode & 0o7777 != 0o555:
        problems.append(f"/{f.name} has mode {f.mode & 0o7777:04o}, not 0555 (read and run, by anyone, written by no one)")
if run.get("User") != "65532:65532":
    problems.append(f"user {run.get('User')!r}, not the numeric 65532:65532")
if run.get("Entrypoint") != [f"/{program}"]:
    problems.append(f"entrypoint {run.get('Entrypoint')}, not [\"/{program}\"]")
if run.get("Cmd"):
    problems.append(f"a default command {run.get('Cmd')}: arguments belong to the deployment")
labels = run.get("Labels") or {}
for label in LABELS:
    if not labels.get(f"org.opencontainers.image.{label}"):
        problems.append(f"label org.opencontainers.image.{label} is missing")
if labels.get("org.opencontainers.image.title", program) != program:
    problems.append(f"label org.opencontainers.image.title is {labels['org.opencontainers.image.title']!r}, not {program!r}")
content = sum(f.size for f in files)
if content > limit:
    problems.append(f"{content} bytes of files, over the limit of {limit}")

for p in problems:
    print(f"  FAIL {archive}: {p}")
print(
    f"  {program}: {len(layers)} layer, {content} bytes of files ({content / 1048576:.2f} MiB, limit {limit / 1048576:.0f} MiB),"
    f" {size} bytes compressed ({size / 1048576:.2f} MiB),"
    f" files {['/' + f.name.lstrip('./') for f in files]}, user {run.get('User')}, entrypoint {run.get('Entrypoint')},"
    f" version label {labels.get('org.opencontainers.image.version')}"
)
sys.exit(1 if problems else 0)
