#!/usr/bin/env python3
"""The configurations the deploy files ship are accepted by the real clm-server and take effect:
the ConfigMap's clm.textproto (deploy/k8s/configmap.yaml) and deploy/clm.textproto (baked into the image).
A text the schema rejects makes the server exit 2 at start; this test shows its log.
"""
import argparse
import os
import re
import shutil
import tempfile

import clmtest


def gate_requirements(textproto):
    """{gate: required} from `gates { min_total_trades: 50 ... }` (absent fields are not checked)."""
    block = re.search(r'\bgates\s*\{([^}]*)\}', textproto)
    out = {}
    if block:
        for field, gate in (("min_total_trades", "total_trades"), ("min_span_days", "span_days"),
                            ("min_win_share", "win_share"), ("min_loss_share", "loss_share")):
            m = re.search(rf'\b{field}\s*:\s*([0-9.]+)', block.group(1))
            if m:
                out[gate] = float(m.group(1))
    return out


def run(binary, name, text):
    workdir = tempfile.mkdtemp(prefix="clm-config-test-")
    path = os.path.join(workdir, "clm.textproto")
    with open(path, "w") as f:
        f.write(text)
    server = clmtest.ClmServer(binary, config=path, workdir=workdir)
    try:
        server.wait_ready()
        metrics = server.metrics()
    finally:
        code = server.stop()
    if code != 0:
        clmtest.fail(f"{name}: clm-server exited {code} after SIGTERM:\n{server.log_text()}")
    expected = gate_requirements(text)
    got = {labels.get("gate"): value
           for labels, value in clmtest.sample_values(metrics, "clm_cadence_gate_requirement")}
    wrong = {g: (v, got.get(g)) for g, v in expected.items() if got.get(g) is None or abs(got[g] - v) > 1e-9}
    if not expected:
        clmtest.fail(f"{name}: no gates {{...}} block found to check")
    if wrong:
        clmtest.fail(f"{name}: gate requirements (configured, served) differ: {wrong}")
    mode = re.search(r'\bdefault_mode\s*:\s*([A-Z_]+)', text)
    if mode and f"mode {mode.group(1)}" not in server.log_text():
        clmtest.fail(f"{name}: the server log does not show mode {mode.group(1)}:\n{server.log_text()}")
    print(f"{name}: accepted; gate requirements {expected} served" + (f", mode {mode.group(1)}" if mode else ""))
    shutil.rmtree(workdir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    args = parser.parse_args()
    yaml = clmtest.import_yaml()
    with open(os.path.join(clmtest.REPO, "deploy", "k8s", "configmap.yaml")) as f:
        cm = yaml.safe_load(f)
    run(args.server, "deploy/k8s/configmap.yaml clm.textproto", cm["data"]["clm.textproto"])
    with open(os.path.join(clmtest.REPO, "deploy", "clm.textproto")) as f:
        run(args.server, "deploy/clm.textproto (in the image)", f.read())


if __name__ == "__main__":
    main()
