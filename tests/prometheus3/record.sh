#!/usr/bin/env bash
# Records Prometheus 3's answers to /api/v1/alerts and /api/v1/rules?type=alert
# into tests/fixtures/prometheus3/ (alerts.json, rules.json), the input of
# tests/decode_fixtures.rs. See README.md beside this file for what the rules
# below make Prometheus report and why.
#
# Runs the binary build.sh prints (or $PROMETHEUS_BIN) on a free loopback port
# for about ten seconds. Needs curl and jq.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$(cd "$here/.." && pwd)/fixtures/prometheus3"
bin="${PROMETHEUS_BIN:-$(bash "$here/build.sh")}"
for tool in curl jq; do
	command -v "$tool" >/dev/null || { echo "record.sh: $tool is required" >&2; exit 1; }
done

dir="$(mktemp -d)"
pid=""
cleanup() {
	[[ -z $pid ]] || kill "$pid" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

# A port nobody listens on (a connection to it is refused).
port=""
for _ in $(seq 50); do
	candidate=$((20000 + RANDOM % 40000))
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
		port=$candidate
		break
	fi
done
[[ -n $port ]] || { echo "record.sh: no free port found" >&2; exit 1; }
api="http://127.0.0.1:$port/api/v1"

# MetricKeepFiring fires for the first few seconds, then its expression turns
# empty and keep_firing_for holds it: the answer carries keepFiringSince.
until=$(($(date +%s) + 4))
cat >"$dir/prometheus.yml" <<EOF
global:
  evaluation_interval: 1s
rule_files: [rules.yaml]
EOF
cat >"$dir/rules.yaml" <<EOF
groups:
  - name: metric-flow
    interval: 1s
    rules:
      - alert: MetricKeepFiring
        expr: vector(time()) < $until
        keep_firing_for: 1h
      - alert: MetricInfValue
        expr: vector(1) / 0
      - alert: MetricNaNValue
        expr: vector(0) / 0
      - alert: MetricUtf8Label
        expr: vector(1)
        labels:
          "service.name": checkout
          region: zürich
      - alert: MetricPending
        expr: vector(1)
        for: 1h
      - alert: MetricInactive
        expr: vector(1) < 0
  # First evaluated at an offset within the hour (a hash of the group), so
  # right after the start it has never been evaluated.
  - name: metric-hourly
    interval: 1h
    rules:
      - alert: MetricNeverEvaluated
        expr: vector(1)
EOF

"$bin" --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
	--web.listen-address="127.0.0.1:$port" --log.level=warn >"$dir/log" 2>&1 &
pid=$!

fail() {
	echo "record.sh: $1; the Prometheus log:" >&2
	cat "$dir/log" >&2
	exit 1
}

for _ in $(seq 100); do
	curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || fail "Prometheus exited"
	sleep 0.1
done
version="$(curl -fsS "$api/status/buildinfo" | jq -r .data.version)" || fail "Prometheus never became ready"
[[ $version == 3.* ]] || fail "this is Prometheus $version, not 3.x"

# Past $until, and one more evaluation, MetricKeepFiring is in its keep-firing phase.
while (($(date +%s) <= until + 1)); do sleep 0.2; done
alerts="$(curl -fsS "$api/alerts")"
rules="$(curl -fsS "$api/rules?type=alert")"

# Check that the answers show what the fixtures are for, before keeping them.
jq -e '[.data.alerts[] | select(.labels.alertname == "MetricKeepFiring" and .keepFiringSince and .state == "firing")] | length == 1' \
	<<<"$alerts" >/dev/null || fail "MetricKeepFiring is not keeping firing: $alerts"
jq -e '.data.alerts | length == 5' <<<"$alerts" >/dev/null || fail "not 5 alerts: $alerts"
jq -e '.data.groups[] | select(.name == "metric-hourly") | .lastEvaluation | startswith("0001-01-01")' \
	<<<"$rules" >/dev/null || fail "metric-hourly was evaluated already (unlucky offset): run again"

mkdir -p "$out"
jq . <<<"$alerts" >"$out/alerts.json"
jq . <<<"$rules" >"$out/rules.json"
echo "record.sh: recorded Prometheus $version into $out" >&2
