#!/bin/sh
# promtool checks the Prometheus configuration and rules, and runs the rules' unit tests
# (tests/deploy/clm_rules_test.yml). Exit 77 (skipped) only when promtool is not installed.
set -u
repo=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v promtool >/dev/null 2>&1; then
  echo "SKIP: promtool not found (Debian: apt-get install prometheus)"
  exit 77
fi
status=0
promtool check config "$repo/deploy/prometheus/prometheus.yml" || { echo "FAIL: promtool check config"; status=1; }
promtool check rules "$repo/deploy/prometheus/clm_rules.yml" || { echo "FAIL: promtool check rules"; status=1; }
# rule_files in the test file are relative to it.
promtool test rules "$repo/tests/deploy/clm_rules_test.yml" || { echo "FAIL: promtool test rules"; status=1; }
exit $status
