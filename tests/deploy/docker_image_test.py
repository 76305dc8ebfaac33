#!/usr/bin/env python3
"""deploy/docker/Dockerfile, checked without a Docker engine:
- the runtime stage installs packages that exist in Debian 12 and that provide every shared library the
  built clm-server needs (ldd -> dpkg -S, against apt-cache's dependency closure of the installed list);
- the builder installs from scripts/deps.sh and builds with the documented CMake line;
- non-root numeric USER, VOLUME /var/lib/clm, EXPOSE 8003 9103;
- the real clm-server accepts ENTRYPOINT + CMD (paths moved to a temporary directory, 0.0.0.0 to 127.0.0.1).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile

import clmtest


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    args = parser.parse_args()
    with open(os.path.join(clmtest.REPO, "deploy", "docker", "Dockerfile")) as f:
        dockerfile = f.read()
    logical = re.sub(r'\\\n', ' ', dockerfile)  # join continuation lines
    problems = []
    stages = re.findall(r'^FROM\s+(\S+)(?:\s+AS\s+(\S+))?', logical, re.M | re.I)
    if len(stages) != 2 or not stages[0][0].startswith("debian:") or "-slim" not in stages[1][0]:
        problems.append(f"expected a debian builder and a debian -slim runtime stage, got {stages}")
    if not re.search(r'ARG DEBIAN_RELEASE=bookworm', logical):
        problems.append("the Debian release must default to bookworm (Debian 12)")
    if "scripts/deps.sh" not in logical or "clm_install_deps" not in logical:
        problems.append("the builder must install with scripts/deps.sh (clm_install_deps)")
    if not os.path.exists(os.path.join(clmtest.REPO, "scripts", "deps.sh")):
        problems.append("scripts/deps.sh does not exist")
    for needle in ("-G Ninja", "-DCMAKE_BUILD_TYPE=Release", "-DCLM_BUILD_TESTS=OFF", "-DCLM_BUILD_BENCH=OFF",
                   "--target clm-server"):
        if needle not in logical:
            problems.append(f"the build line lacks {needle}")
    user = re.search(r'^USER\s+(\d+)', logical, re.M)
    if not user or int(user.group(1)) == 0:
        problems.append("USER must be a numeric non-root uid")
    if not re.search(r'^VOLUME\s+\[?"?/var/lib/clm', logical, re.M):
        problems.append("VOLUME /var/lib/clm missing")
    expose = re.search(r'^EXPOSE\s+(.*)$', logical, re.M)
    if not expose or set(expose.group(1).split()) != {"8003", "8004", "9103"}:
        problems.append("EXPOSE must be 8003 8004 9103")

    runtime = logical[logical.rfind("\nFROM "):]
    install = re.search(r'apt-get install\s+(.*?)(?:&&|$)', runtime, re.M)
    packages = [p for p in install.group(1).split() if not p.startswith("-")] if install else []
    if not packages:
        problems.append("no apt-get install in the runtime stage")
    print(f"runtime packages: {packages}")

    if shutil.which("apt-cache") and shutil.which("dpkg") and shutil.which("ldd"):
        for p in packages:
            if run(["apt-cache", "show", p]).returncode != 0:
                problems.append(f"runtime package {p} is not known to apt (not in Debian 12?)")
        closure = run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                       "--no-breaks", "--no-replaces", "--no-enhances", "--no-pre-depends", *packages]).stdout
        provided = set(re.findall(r'^(\S+)$', closure, re.M)) | set(re.findall(r'Depends: <?([^\s>]+)', closure))
        provided = {p.split(":")[0] for p in provided}
        libs = re.findall(r'=>\s+(\S+)', run(["ldd", args.server]).stdout)
        # A sanitizer build (./test.sh --asan, --tsan) links its runtime; the image's Release build does not.
        libs = [lib for lib in libs if not re.search(r'/lib(a|t|ub|l)san\.so', lib)]
        if not libs:
            problems.append(f"ldd {args.server} found no shared libraries")
        for lib in libs:
            owner = run(["dpkg", "-S", os.path.realpath(lib)])
            if owner.returncode != 0:
                owner = run(["dpkg", "-S", lib])
            if owner.returncode != 0:
                problems.append(f"{lib} belongs to no Debian package: the image cannot provide it")
                continue
            pkg = owner.stdout.split(":")[0].strip()
            if pkg not in provided:
                problems.append(f"{lib} comes from {pkg}, which the runtime stage does not install")
        print(f"{len(libs)} shared libraries of clm-server are covered by the runtime packages")
    else:
        print("apt-cache/dpkg/ldd not available: package checks skipped")

    entrypoint = json.loads(re.search(r'^ENTRYPOINT\s+(\[.*\])\s*$', logical, re.M).group(1))
    cmd = json.loads(re.search(r'^CMD\s+(\[.*\])\s*$', logical, re.M).group(1))
    if entrypoint[0] != "/usr/local/bin/clm-server":
        problems.append(f"ENTRYPOINT runs {entrypoint[0]}")
    for flag in ("--grpc_address=0.0.0.0:8003", "--health_address=0.0.0.0:8004", "--metrics_address=0.0.0.0:9103",
                 "--data_dir=/var/lib/clm"):
        if flag not in entrypoint:
            problems.append(f"ENTRYPOINT lacks {flag}")
    # 0.0.0.0 without TLS and credentials is refused at start: the default command must carry them.
    for flag in ("--tls_cert=", "--tls_key=", "--auth_tokens="):
        if not any(a.startswith(flag) for a in cmd):
            problems.append(f"CMD lacks {flag}")
    if problems:
        clmtest.fail("\n  ".join(["Dockerfile:"] + problems))

    workdir = tempfile.mkdtemp(prefix="clm-docker-test-")
    # The mounted secrets: a self-signed certificate and a credentials file, where the flags point.
    files = {}
    for a in cmd:
        if a.startswith(("--tls_cert=", "--tls_key=", "--auth_tokens=")):
            flag, path = a.split("=", 1)
            files[path] = os.path.join(workdir, flag.lstrip("-"))
    cert, key = files[flag_value(cmd, "--tls_cert")], files[flag_value(cmd, "--tls_key")]
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
         "-keyout", key, "-out", cert, "-subj", "/CN=clm-docker-test"])
    with open(files[flag_value(cmd, "--auth_tokens")], "w") as f:
        f.write("token " + "0" * 64 + " docker-test viewer\n")
    flags = []
    for a in entrypoint[1:] + cmd:
        if a.startswith(("--grpc_address", "--metrics_address")):
            continue  # the test's own 127.0.0.1 addresses follow
        if a.startswith("--health_address="):
            a = f"--health_address=127.0.0.1:{clmtest.free_port()}"
        for image_path, local in files.items():
            a = a.replace(image_path, local)
        flags.append(a.replace("/var/lib/clm", os.path.join(workdir, "data"))
                      .replace("/etc/clm/clm.textproto", os.path.join(clmtest.REPO, "deploy", "clm.textproto")))
    server = clmtest.ClmServer(args.server, workdir=workdir, flags=flags)
    server.wait_ready()
    code = server.stop()
    if code != 0:
        clmtest.fail(f"clm-server with the image's arguments exited {code} after SIGTERM:\n{server.log_text()}")
    print(f"clm-server accepts the image's arguments {flags} and exits 0 on SIGTERM")
    shutil.rmtree(workdir, ignore_errors=True)


def flag_value(args, flag):
    return next(a.split("=", 1)[1] for a in args if a.startswith(flag + "="))


if __name__ == "__main__":
    main()
