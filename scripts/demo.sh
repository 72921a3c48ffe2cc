#!/usr/bin/env bash
# The README's first command: build the connector and the sandbox, start the sandbox, sync every stream through
# the Airbyte protocol, and show what came out. Needs only Go and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.build/demo
mkdir -p bin "$out"
go build -trimpath -o bin/source-klaviyo ./cmd/source-klaviyo
go build -trimpath -o bin/klaviyo-sandbox ./cmd/klaviyo-sandbox

# 20-60 ms per request, about what a nearby Klaviyo answers in, so the sync lasts long enough to show its progress.
bin/klaviyo-sandbox --api-key demo-key --seed 7 --latency 20ms-60ms >"$out/sandbox.out" 2>"$out/sandbox.err" &
sandbox=$!
trap 'kill $sandbox 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  [ -s "$out/sandbox.out" ] && break
  sleep 0.1
done
url=$(head -n1 "$out/sandbox.out")
[ -n "$url" ] || { echo "the sandbox did not start: $(cat "$out/sandbox.err")" >&2; exit 1; }
echo "sandbox: $url"

# rate_limit_scale 10: the sandbox has no rate limits by default, so the demo need not wait on Klaviyo's real
# per-endpoint budgets (flows and tags are allowed 1 request a second). progress_interval_seconds 1: a report of
# every running stream each second (a real sync reports every 30 s by default). On a terminal, stderr also shows
# the live progress of the running streams while the sync runs.
printf '{"api_key": "demo-key", "base_url": "%s", "rate_limit_scale": 10, "progress_interval_seconds": 1}\n' "$url" >"$out/config.json"
bin/source-klaviyo check --config "$out/config.json"
bin/source-klaviyo discover --config "$out/config.json" >"$out/catalog.jsonl"
python3 - "$out/catalog.jsonl" >"$out/configured_catalog.json" <<'PY'
import json, sys
cat = next(json.loads(l) for l in open(sys.argv[1]) if '"CATALOG"' in l)["catalog"]
streams = []
for s in cat["streams"]:
    mode = "incremental" if "incremental" in s["supported_sync_modes"] else "full_refresh"
    streams.append({"stream": s, "sync_mode": mode,
                    "destination_sync_mode": "append_dedup" if mode == "incremental" else "overwrite",
                    "cursor_field": s.get("default_cursor_field", []),
                    "primary_key": s.get("source_defined_primary_key", [])})
json.dump({"streams": streams}, sys.stdout)
PY
start=$(date +%s.%N)
bin/source-klaviyo read --config "$out/config.json" --catalog "$out/configured_catalog.json" >"$out/output.jsonl"
end=$(date +%s.%N)
python3 - "$out/output.jsonl" "$start" "$end" <<'PY'
import json, sys, collections
counts, states, status, sample = collections.Counter(), {}, {}, {}
progress, estimates = [], 0
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m["type"] == "LOG" and m["log"]["message"].startswith("progress: "):
        progress.append(m["log"]["message"])
    elif m["type"] == "TRACE" and m["trace"]["type"] == "ESTIMATE":
        estimates += 1
    if m["type"] == "RECORD":
        counts[m["record"]["stream"]] += 1
        sample.setdefault(m["record"]["stream"], m["record"]["data"])
    elif m["type"] == "STATE":
        s = m["state"]["stream"]
        states[s["stream_descriptor"]["name"]] = s["stream_state"]
    elif m["type"] == "TRACE" and m["trace"]["type"] == "STREAM_STATUS":
        t = m["trace"]["stream_status"]
        status[t["stream_descriptor"]["name"]] = t["status"]
    elif m["type"] == "TRACE" and m["trace"]["type"] == "ERROR":
        print("ERROR:", m["trace"]["error"]["message"])
periodic = [p for p in progress if "finished in" not in p]
print(f"\nprogress: {len(progress)} LOG reports ({len(periodic)} periodic, one final per stream) and {estimates} ESTIMATE traces, e.g.")
for p in (periodic[-3:] + [p for p in progress if p.startswith("progress: events:") and "finished in" in p])[:4]:
    print("  " + p)
print(f"\n{'stream':32} {'records':>8}  status      final state")
for name in sorted(status):
    st = json.dumps(states.get(name, {}))
    print(f"{name:32} {counts[name]:>8}  {status[name]:10}  {st[:60]}")
print(f"\n{sum(counts.values())} records from {len(status)} streams in {float(sys.argv[3]) - float(sys.argv[2]):.2f} s")
print("\none events record:", json.dumps(sample.get("events", {}))[:400])
print("full output:", sys.argv[1])
PY
