#!/bin/bash
# The alert rules (compose/prometheus/alerts.yml): valid, and each one fires and stays
# silent as tests/alerts/alerts_test.yml says. Needs promtool (Debian's prometheus).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v promtool >/dev/null || { echo "FAIL: promtool not installed (scripts/install-deps.sh)"; exit 1; }
promtool check rules compose/prometheus/alerts.yml
promtool check config compose/prometheus/prometheus.yml
promtool test rules tests/alerts/alerts_test.yml
# Every alert has a test case that expects it to fire (the multi-line form, with
# exp_alerts listed; the one-line form is for "stays silent").
for a in $(grep -o 'alert: [A-Za-z]*' compose/prometheus/alerts.yml | cut -d' ' -f2); do
    grep -q "^ *alertname: $a\$" tests/alerts/alerts_test.yml ||
        { echo "FAIL: alert $a has no test that expects it to fire"; exit 1; }
done
echo "ok: alert rules valid and tested"
