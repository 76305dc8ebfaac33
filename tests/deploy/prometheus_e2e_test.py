#!/usr/bin/env python3
"""A real Prometheus scrapes a real clm-server and evaluates deploy/prometheus/clm_rules.yml.

1. clm-server on free 127.0.0.1 ports with a temporary store.
2. Prometheus (scrape and rule evaluation every second) with the repository's rules file; once it scrapes
   the server, clm-load (a real gRPC Ingest client), when given, sends the same N trades twice: N accepted,
   then N duplicates.
3. Checks through Prometheus' HTTP API: the target is up; the gate, MSE and ingest series are there (with
   the ingested counts when trades were sent); every rule loaded and evaluates without error; no
   server-down or store alert is active; every query of the Grafana dashboard runs and returns data.
4. SIGTERM to both: clm-server must exit 0.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

import clmtest

DEADLINE_SECONDS = 90


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--prometheus", default="prometheus")
    parser.add_argument("--rules", required=True)
    parser.add_argument("--dashboard", required=True)
    parser.add_argument("--load", default="", help="clm-load binary; empty: no trades are sent")
    parser.add_argument("--trades", type=int, default=300)
    args = parser.parse_args()
    yaml = clmtest.import_yaml()
    prometheus = shutil.which(args.prometheus)
    if prometheus is None:
        clmtest.skip(f"{args.prometheus} not found (Debian: apt-get install prometheus)")
    if args.load and not os.access(args.load, os.X_OK):
        clmtest.fail(f"--load {args.load} is not built (build the clm-load target, or configure with "
                     "CLM_BUILD_BENCH=OFF to run without ingestion)")
    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="clm-prom-e2e-")
    server = clmtest.ClmServer(args.server, workdir=workdir)
    prom = None
    prom_log = None
    try:
        server.wait_ready()
        print(f"clm-server: gRPC 127.0.0.1:{server.grpc_port}, metrics 127.0.0.1:{server.metrics_port}")

        prom_port = clmtest.free_port()
        config_path = os.path.join(workdir, "prometheus.yml")
        with open(config_path, "w") as f:
            yaml.safe_dump({
                "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                "rule_files": [os.path.abspath(args.rules)],
                "scrape_configs": [{"job_name": "clm", "static_configs": [
                    {"targets": [f"127.0.0.1:{server.metrics_port}"]}]}],
            }, f)
        prom_log = open(os.path.join(workdir, "prometheus.log"), "w")
        prom = subprocess.Popen(
            [prometheus, f"--config.file={config_path}", f"--storage.tsdb.path={os.path.join(workdir, 'tsdb')}",
             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
            stdout=prom_log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{prom_port}"

        def prom_alive():
            if prom.poll() is not None:
                prom_log.flush()
                clmtest.fail(f"prometheus exited with {prom.returncode}:\n{open(prom_log.name).read()}")

        def api(path, **params):
            prom_alive()
            url = f"{base}{path}" + ("?" + urllib.parse.urlencode(params) if params else "")
            body = json.loads(clmtest.http_get(url, timeout=5))
            if body.get("status") != "success":
                raise ValueError(f"{path} {params}: {body}")
            return body["data"]

        def query(expr):
            return api("/api/v1/query", query=expr)["result"]

        def remaining():
            return max(1, DEADLINE_SECONDS - (time.monotonic() - started))

        clmtest.wait_for("prometheus to be ready", lambda: prom_alive() or "Ready" in clmtest.http_get(
            f"{base}/-/ready"), min(30, remaining()))
        clmtest.wait_for('up{job="clm"} == 1', lambda: query('up{job="clm"} == 1'), min(20, remaining()))
        print("prometheus scrapes clm-server")

        # Trades go in after the first scrapes, so Prometheus sees the counters rise (rates above 0).
        trades = 0
        if args.load:
            trades = args.trades
            for run in ("first", "second"):
                try:
                    result = subprocess.run(
                        [args.load, f"--server=127.0.0.1:{server.grpc_port}", f"--trades={trades}", "--batch=50",
                         "--seed=7", "--id_prefix=deploy-e2e"], capture_output=True, text=True, timeout=20)
                except subprocess.TimeoutExpired:
                    clmtest.fail(f"clm-load ({run} run) got no acknowledgement for all {trades} trades within 20s; "
                                 f"server log:\n{server.log_text()}")
                if result.returncode != 0:
                    clmtest.fail(f"clm-load ({run} run) exited {result.returncode}:\n{result.stdout}{result.stderr}")
            print(f"clm-load sent the same {trades} trades twice")

        def series_count(expr, n):
            got = query(expr)
            return len(got) == n and got

        gates = clmtest.wait_for("4 clm_cadence_gate_passed series",
                                 lambda: series_count('clm_cadence_gate_passed{job="clm"}', 4), 10)
        names = sorted(s["metric"]["gate"] for s in gates)
        if names != ["loss_share", "span_days", "total_trades", "win_share"]:
            clmtest.fail(f"unexpected gates {names}")
        clmtest.wait_for("4 clm_calibration_mse series (in/out of sample x before/after)",
                         lambda: series_count('clm_calibration_mse{job="clm"}', 4), 10)
        clmtest.wait_for("clm_ingest_trades_total accepted and duplicate",
                         lambda: series_count('clm_ingest_trades_total{job="clm"}', 2), 10)
        clmtest.wait_for("clm_ingest_trades_rejected_total series",
                         lambda: query('clm_ingest_trades_rejected_total{job="clm", reason="conflict"}'), 10)
        if trades:
            def value(expr):
                result = query(expr)
                return float(result[0]["value"][1]) if result else None
            clmtest.wait_for(f"{trades} accepted trades", lambda: value(
                'clm_ingest_trades_total{job="clm", result="accepted"}') == trades, 10)
            # The rerun sends identical trades, unless it crossed an hour boundary (the generator's time base):
            # then the same ids come with new content, which are conflicts.
            clmtest.wait_for(f"{trades} duplicates (or conflicts)", lambda: value(
                'sum(clm_ingest_trades_total{job="clm", result="duplicate"}) + '
                'sum(clm_ingest_trades_rejected_total{job="clm", reason="conflict"})') == trades, 10)
            clmtest.wait_for(f"gate total_trades == {trades} (the cadence monitor saw the trades)", lambda: value(
                'clm_cadence_gate_value{job="clm", gate="total_trades"}') == trades, 20)
            clmtest.wait_for("a positive recorded ingest rate", lambda: (value(
                'clm:ingest_trades:rate5m{job="clm", result="accepted"}') or 0) > 0, 15)
            print("ingest counters, cadence gates and recording rules reflect the trades sent")

        # Every rule of the file is loaded and has been evaluated without error.
        with open(args.rules) as f:
            expected = sum(len(g.get("rules", [])) for g in yaml.safe_load(f)["groups"])

        def rules_evaluated():
            groups = api("/api/v1/rules")["groups"]
            rules = [r for g in groups for r in g["rules"]]
            if len(rules) != expected:
                raise ValueError(f"prometheus loaded {len(rules)} rules, the file has {expected}")
            bad = [f'{r["name"]}: {r.get("lastError")}' for r in rules if r.get("health") == "err"]
            if bad:
                clmtest.fail("rules fail to evaluate:\n  " + "\n  ".join(bad))
            return all(r.get("health") == "ok" for r in rules)
        clmtest.wait_for(f"all {expected} rules evaluated", rules_evaluated, min(15, remaining()))
        print(f"all {expected} rules load and evaluate without error")

        # None of these may be pending or firing on a healthy server. Right after Prometheus starts, the first
        # evaluation can run before the first scrape (absent(up) is briefly true): wait for it to clear.
        unhealthy = {"ClmDown", "ClmTargetMissing", "ClmStoreCommitsFailing", "ClmIngestRejectsRising",
                     "ClmCalibrationOutOfSampleMseRegression", "ClmCadenceMonitorErrors", "ClmStoreCommitSlow"}
        if trades == 0:
            unhealthy.add("ClmIngestConflicts")
        active = []

        def no_unhealthy_alerts():
            active[:] = [f'{a["labels"]["alertname"]} ({a["state"]})' for a in api("/api/v1/alerts")["alerts"]
                         if a["labels"]["alertname"] in unhealthy]
            return not active
        deadline = time.monotonic() + 10
        while not no_unhealthy_alerts():
            if time.monotonic() > deadline:
                clmtest.fail(f"alerts active on a healthy server: {active}")
            time.sleep(0.5)
        for a in api("/api/v1/alerts")["alerts"]:
            print(f'  alert {a["labels"]["alertname"]} is {a["state"]} (expected with this data)')
        print("no server, store or ingest alert is active")

        # Every dashboard query runs; all but the "> 0" filters return data from a real server.
        with open(args.dashboard) as f:
            dashboard = json.load(f)
        # rate() over the panels' window needs at least two scrapes in it.
        clmtest.wait_for("3 scrapes in Prometheus", lambda: query('count_over_time(up{job="clm"}[1m]) >= 3'), 10)
        problems = []
        count = 0
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"].replace("$__rate_interval", "1m").replace("$instance", ".*")
                count += 1
                try:
                    result = query(expr)
                except (ValueError, OSError) as e:
                    problems.append(f'panel "{panel["title"]}": {expr}: {e}')
                    continue
                if not result and not expr.rstrip().endswith("> 0"):
                    problems.append(f'panel "{panel["title"]}": no data for {expr}')
        if problems:
            clmtest.fail("dashboard queries:\n  " + "\n  ".join(problems))
        print(f"all {count} dashboard queries run and return data")
    finally:
        if prom is not None and prom.poll() is None:
            prom.send_signal(signal.SIGTERM)
            try:
                prom.wait(timeout=15)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait()
        if prom_log is not None:
            prom_log.close()
        code = server.stop()
    if code != 0:
        clmtest.fail(f"clm-server exited with {code} after SIGTERM (expected 0):\n{server.log_text()}")
    print(f"clm-server exited 0 after SIGTERM; took {time.monotonic() - started:.1f}s")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
