#!/usr/bin/env python3
"""Every metric the Grafana dashboard and the Prometheus rules use is one clm-server exports.

Starts the real clm-server, reads /metrics, and checks each vector selector in the dashboard's queries (and
its variable queries) and in the rules' expressions: the name must be exported (histograms add
_bucket/_sum/_count), recorded by a rule in the rules file, or a Prometheus built-in (`up`); every label a
selector matches on must exist on that series (besides job/instance, which Prometheus adds); and an exact
label value (`result="accepted"`) must be one the server exports. Prints every problem found.
"""
import argparse
import json
import re
import sys

import clmtest

BUILTINS = {"up"}                       # series Prometheus itself makes for each target
TARGET_LABELS = {"job", "instance"}     # labels Prometheus attaches to every scraped series


def dashboard_queries(dashboard):
    queries = []

    def walk_panels(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    queries.append((f'panel "{panel.get("title")}" {target.get("refId")}', target["expr"]))
            walk_panels(panel.get("panels", []))

    walk_panels(dashboard.get("panels", []))
    for var in dashboard.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if var.get("type") == "query" and query:
            # label_values(selector, label) / query_result(expr): the selector or expression inside.
            m = re.fullmatch(r'\s*(?:label_values|query_result)\((.*?)(?:,\s*[a-zA-Z_]+)?\)\s*', query, re.S)
            queries.append((f'variable "{var.get("name")}"', m.group(1) if m else query))
    return queries


def rule_queries(rules_doc):
    queries, recorded = [], set()
    for group in rules_doc.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("record") or rule.get("alert")
            queries.append((f'rule {name}', str(rule["expr"])))
            if "record" in rule:
                recorded.add(rule["record"])
    return queries, recorded


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--dashboard", required=True)
    parser.add_argument("--rules", required=True)
    args = parser.parse_args()
    yaml = clmtest.import_yaml()

    server = clmtest.ClmServer(args.server)
    try:
        server.wait_ready()
        text = server.metrics()
    finally:
        code = server.stop()
    if code != 0:
        clmtest.fail(f"clm-server exited with {code} after SIGTERM:\n{server.log_text()}")

    families = clmtest.exported_families(text)
    exported = clmtest.exported_sample_names(families)
    samples = clmtest.exported_samples(text)
    print(f"clm-server exports {len(families)} metric families")

    with open(args.dashboard) as f:
        dashboard = json.load(f)
    with open(args.rules) as f:
        rules_doc = yaml.safe_load(f)
    queries = dashboard_queries(dashboard)
    rq, recorded = rule_queries(rules_doc)
    queries += rq

    problems, checked = [], set()
    for where, expr in queries:
        refs = clmtest.promql_references(expr)
        if not refs:
            problems.append(f"{where}: no metric found in {expr!r}")
        for name, matchers in refs:
            if not name:
                problems.append(f"{where}: selector without a metric name in {expr!r}")
                continue
            checked.add(name)
            if name in BUILTINS or name in recorded:
                continue
            if name not in exported:
                problems.append(f"{where}: {name} is not exported by clm-server (query: {expr.strip()})")
                continue
            series = samples.get(name, [])
            if not series:
                continue  # exported family without samples yet: label sets unknown
            known_labels = set().union(*(s.keys() for s in series)) | TARGET_LABELS
            for label, (op, value) in matchers.items():
                if label not in known_labels:
                    problems.append(f"{where}: {name} has no label {label!r} (it has {sorted(known_labels)})")
                elif op == "=" and label not in TARGET_LABELS and "VAR" not in value:
                    values = {s.get(label) for s in series}
                    if value not in values:
                        problems.append(f'{where}: {name}{{{label}="{value}"}} matches nothing; exported values: '
                                        f"{sorted(v for v in values if v is not None)}")

    clm_names = sorted(n for n in checked if n.startswith("clm_"))
    print(f"checked {len(queries)} queries, {len(checked)} names, {len(clm_names)} clm_* metrics:")
    for n in sorted(checked):
        print(f"  {n}")
    if len(clm_names) < 10:
        problems.append(f"only {len(clm_names)} clm_* metrics found in the dashboard and rules: the extraction "
                        "is broken or the files are empty")
    if problems:
        for p in problems:
            print(f"FAIL: {p}", file=sys.stderr)
        sys.exit(1)
    print("OK: every referenced metric is exported")


if __name__ == "__main__":
    main()
