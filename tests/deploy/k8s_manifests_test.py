#!/usr/bin/env python3
"""deploy/k8s/*.yaml: valid YAML, every object well formed, and the objects agree with each other and with
the image (deploy/docker/Dockerfile): selectors, port names, volume and ConfigMap names, the user id.
Prints every problem found.
"""
import glob
import json
import os
import re
import sys

import clmtest

problems = []


def check(condition, message):
    if not condition:
        problems.append(message)
    return condition


def main():
    yaml = clmtest.import_yaml()
    k8s = os.path.join(clmtest.REPO, "deploy", "k8s")
    files = sorted(glob.glob(os.path.join(k8s, "*.yaml")))
    if not files:
        clmtest.fail(f"no manifests in {k8s}")
    objects = {}
    kustomization = None
    for path in files:
        name = os.path.basename(path)
        try:
            with open(path) as f:
                docs = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            problems.append(f"{name}: invalid YAML: {e}")
            continue
        for doc in docs:
            if not check(isinstance(doc, dict), f"{name}: a document is not a mapping"):
                continue
            if doc.get("kind") == "Kustomization":
                kustomization = (name, doc)
                continue
            for key in ("apiVersion", "kind"):
                check(doc.get(key), f"{name}: missing {key}")
            check((doc.get("metadata") or {}).get("name"), f"{name}: missing metadata.name")
            objects[doc.get("kind")] = doc
            print(f"{name}: {doc.get('apiVersion')} {doc.get('kind')} {doc.get('metadata', {}).get('name')}")
    if problems:
        report()

    if check(kustomization, "no kustomization.yaml"):
        listed = sorted(kustomization[1].get("resources", []))
        present = sorted(os.path.basename(p) for p in files if os.path.basename(p) != kustomization[0])
        check(listed == present, f"kustomization resources {listed} != manifests {present}")

    for kind in ("Deployment", "Service", "PersistentVolumeClaim", "ConfigMap", "ServiceMonitor"):
        check(kind in objects, f"no {kind} manifest")
    if problems:
        report()
    dep, svc, pvc, cm, sm = (objects[k] for k in
                             ("Deployment", "Service", "PersistentVolumeClaim", "ConfigMap", "ServiceMonitor"))

    spec = dep["spec"]
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    check(spec.get("replicas") == 1, "Deployment: replicas must be 1 (single-writer SQLite store)")
    check(spec.get("strategy", {}).get("type") == "Recreate", "Deployment: strategy must be Recreate")
    check(subset(spec["selector"]["matchLabels"], pod_labels), "Deployment: selector does not match the pod labels")
    check(pod.get("terminationGracePeriodSeconds", 30) >= 30, "Deployment: terminationGracePeriodSeconds < 30")
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, "pod securityContext: runAsNonRoot must be true")
    containers = pod["containers"]
    check(len(containers) == 1, "Deployment: expected one container")
    c = containers[0]
    csc = c.get("securityContext", {})
    check(csc.get("readOnlyRootFilesystem") is True, "container: readOnlyRootFilesystem must be true")
    check(csc.get("allowPrivilegeEscalation") is False, "container: allowPrivilegeEscalation must be false")
    check("ALL" in csc.get("capabilities", {}).get("drop", []), "container: capabilities must drop ALL")
    check(c.get("resources", {}).get("requests") and c.get("resources", {}).get("limits"),
          "container: resources requests and limits must be set")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(ports == {"grpc": 8003, "health": 8004, "metrics": 9103},
          f"container ports {ports} != grpc 8003, health 8004, metrics 9103")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        p = c.get(probe)
        if check(p, f"container: no {probe}"):
            check(p.get("grpc", {}).get("port") == 8004,
                  f"{probe}: must be a native grpc probe on the plaintext health port 8004 (it cannot use TLS)")

    # The image: user id and the data directory its ENTRYPOINT uses.
    with open(os.path.join(clmtest.REPO, "deploy", "docker", "Dockerfile")) as f:
        dockerfile = f.read()
    user = re.search(r'^USER\s+(\d+)(?::(\d+))?\s*$', dockerfile, re.M)
    if check(user, "Dockerfile: no numeric USER"):
        check(psc.get("runAsUser") == int(user.group(1)),
              f"pod runAsUser {psc.get('runAsUser')} != the image's USER {user.group(1)}")
    entrypoint = json.loads(re.search(r'^ENTRYPOINT\s+(\[.*\])\s*$', dockerfile, re.M).group(1))
    data_dirs = [a.split("=", 1)[1] for a in entrypoint + c.get("args", []) if a.startswith("--data_dir=")]
    data_dir = data_dirs[-1] if data_dirs else None
    mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for m in mounts:
        check(m in volumes, f"volumeMount {m} has no volume")
    data_mount = [m for m in mounts.values() if m["mountPath"] == data_dir]
    if check(data_mount, f"no volumeMount at the server's --data_dir {data_dir}"):
        claim = volumes[data_mount[0]["name"]].get("persistentVolumeClaim", {}).get("claimName")
        check(claim == pvc["metadata"]["name"], f"data volume claims {claim}, the PVC is {pvc['metadata']['name']}")
    check("ReadWriteOnce" in pvc["spec"].get("accessModes", []), "PVC: accessModes must include ReadWriteOnce")
    config_flags = [a.split("=", 1)[1] for a in c.get("args", []) if a.startswith("--config=")]
    if check(config_flags, "container args: no --config"):
        config_dir, config_file = os.path.split(config_flags[-1])
        cm_mount = [m for m in mounts.values() if m["mountPath"] == config_dir]
        if check(cm_mount, f"no volumeMount at {config_dir} for --config"):
            cm_name = volumes[cm_mount[0]["name"]].get("configMap", {}).get("name")
            check(cm_name == cm["metadata"]["name"], f"config volume uses ConfigMap {cm_name}, "
                                                     f"the ConfigMap is {cm['metadata']['name']}")
        check(config_file in cm.get("data", {}), f"ConfigMap has no key {config_file}")
    check(any(m["mountPath"] == "/tmp" for m in mounts.values()), "no writable /tmp (read-only root filesystem)")
    # The server listens on 0.0.0.0 in the pod: TLS and credentials from mounted Secrets, or it refuses to start.
    for flag in ("--tls_cert", "--tls_key", "--auth_tokens"):
        values = [a.split("=", 1)[1] for a in c.get("args", []) if a.startswith(flag + "=")]
        if check(values, f"container args: no {flag} (0.0.0.0 without TLS and credentials is refused)"):
            directory = os.path.dirname(values[-1])
            mount = [m for m in mounts.values() if m["mountPath"] == directory]
            if check(mount, f"no volumeMount at {directory} for {flag}"):
                check("secret" in volumes.get(mount[0]["name"], {}), f"{flag}: {directory} is not a Secret volume")

    check(subset(svc["spec"]["selector"], pod_labels), "Service: selector does not match the pod labels")
    svc_ports = {p["name"]: p for p in svc["spec"]["ports"]}
    for name, port in (("grpc", 8003), ("metrics", 9103)):
        if check(name in svc_ports, f"Service: no port named {name}"):
            check(svc_ports[name]["port"] == port, f"Service: port {name} is not {port}")
            check(svc_ports[name].get("targetPort") in (name, port), f"Service: port {name} targets "
                                                                   f"{svc_ports[name].get('targetPort')}")
    check(svc["metadata"]["name"] == "clm", "Service must be named clm: Prometheus' job label, used by the rules")

    check(sm["apiVersion"] == "monitoring.coreos.com/v1", "ServiceMonitor: apiVersion monitoring.coreos.com/v1")
    check(subset(sm["spec"]["selector"]["matchLabels"], svc["metadata"].get("labels", {})),
          "ServiceMonitor: selector does not match the Service labels")
    for ep in sm["spec"]["endpoints"]:
        check(ep.get("port") in svc_ports, f"ServiceMonitor: endpoint port {ep.get('port')} is not a Service port")
        check(ep.get("path", "/metrics") == "/metrics", "ServiceMonitor: path must be /metrics")
    report()


def subset(small, big):
    return bool(small) and all(big.get(k) == v for k, v in small.items())


def report():
    if problems:
        for p in problems:
            print(f"FAIL: {p}", file=sys.stderr)
        sys.exit(1)
    print("OK: manifests are valid and consistent")
    sys.exit(0)


if __name__ == "__main__":
    main()
