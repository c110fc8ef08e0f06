#!/usr/bin/env bash
# The API against its own OpenAPI document: schemathesis, every check on, on the portal and engine
# APIs with real tokens, stateful phase included, bounded in examples and time.
#
# Usage: .ci/schemathesis.sh [path/to/switchboard]   (default: builds and uses the release binary)
#
# It starts the server on a fresh SQLite database in a temp dir on a free port, takes the
# credentials the first start prints, gets a portal and an engine token, and runs schemathesis
# against /openapi.json; each operation gets the token its security scheme names. It prints
# schemathesis's summary, then one line `schemathesis: …`, and exits non-zero on any failure.
#
# Settings (environment): SCHEMATHESIS_VENV (the virtual environment, reused when present),
# SCHEMATHESIS_EXAMPLES (examples per operation, default 25), SCHEMATHESIS_MAX_TIME (seconds,
# default 200), SCHEMATHESIS_SEED (default fixed, so that CI runs are repeatable; `random` for a
# new one each run).
set -uo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard-target}"
version=4.32.5
venv="${SCHEMATHESIS_VENV:-$HOME/.cache/switchboard-schemathesis-$version}"
examples="${SCHEMATHESIS_EXAMPLES:-25}"
max_time="${SCHEMATHESIS_MAX_TIME:-200}"
seed="${SCHEMATHESIS_SEED:-15}"

say() { echo "schemathesis: $*"; }

bin="${1:-}"
if [ -z "$bin" ]; then
  cargo build --release -p switchboard || { say "FAILED: the server did not build"; exit 1; }
  bin="$CARGO_TARGET_DIR/release/switchboard"
fi

# A Python of 3.12 or later when there is one: on 3.11, hypothesis's reading of lambda sources
# sometimes dies in CPython's parser ("AST constructor recursion depth mismatch"), an error of the
# tool that would count as a failed run.
pick_python() {
  local p
  for p in "${SCHEMATHESIS_PYTHON:-}" python3.13 python3.12 \
    "$HOME"/.pyenv/versions/3.1[3-9]*/bin/python3 "$HOME"/.pyenv/versions/3.12*/bin/python3 python3; do
    [ -n "$p" ] && "$p" -c 'import sys; assert sys.version_info >= (3, 9)' 2>/dev/null && { echo "$p"; return; }
  done
}
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$version"; then
  python=$(pick_python)
  say "installing schemathesis $version into $venv with $python"
  rm -rf "$venv"
  "$python" -m venv "$venv" && "$venv/bin/pip" install -q "schemathesis==$version" \
    || { say "FAILED: could not install schemathesis"; exit 1; }
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
# Webhooks are not delivered anywhere during the run: no integration URL is reachable.
# The rate limits are set far above the run's pace (about 80 requests a second from one tenant and
# one address): the run checks shapes, not the limiter (tests/it/rate_limits.rs does).
limits=()
for l in PORTAL ENGINE WS_FRAMES TOKEN PUBLIC CHANNEL; do limits+=("SWITCHBOARD_RATE_LIMIT_$l=1000000/s:1000000"); done
# Providers are offline (no provider call: there is no Internet here), and the server has a Facebook
# app secret, so Messenger and WhatsApp configurations without `appSecret` are valid as documented.
env "${limits[@]}" SWITCHBOARD_PROVIDERS=offline SWITCHBOARD_MESSENGER_APP_SECRET=schemathesis \
  DATABASE_URL="$work/switchboard.db" SWITCHBOARD_BIND="127.0.0.1:$port" RUST_LOG=warn \
  "$bin" serve >"$work/stdout" 2>"$work/stderr" &
server_pid=$!

for _ in $(seq 1 100); do
  curl -fs "$base/readyz" >/dev/null 2>&1 && [ -s "$work/stdout" ] && break
  sleep 0.1
done
if ! curl -fs "$base/readyz" >/dev/null 2>&1; then
  say "FAILED: the server did not start"
  cat "$work/stderr" >&2
  exit 1
fi

credential() { python3 -c "import json, sys; print(json.loads(open(sys.argv[1]).readline())[sys.argv[2]][sys.argv[3]])" "$work/stdout" "$1" "$2"; }
token() {
  curl -fs -X POST "$base/connect/token" -d grant_type=client_credentials \
    --data-urlencode "client_id=$(credential "$1" clientId)" \
    --data-urlencode "client_secret=$(credential "$1" clientSecret)" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
portal=$(token portal) && engine=$(token engine) || { say "FAILED: no tokens"; exit 1; }

# Each security scheme of the document gets its token. `IntegrationSignature` (an Ed25519
# signature of the request) cannot be given as a fixed value; the operation that takes it also
# takes `EngineAuth`, which schemathesis uses.
# The Smooch-compatible routes (tag `smooch`, HS256 tokens of their own keys) are left out: their
# conventions are Smooch's, not SPEC 1's (unknown fields refused, ids of any shape 404), and the
# real smooch-core clients and tests/it/smooch_*.rs test them.
# The hooks let through the refusals that depend on stored state, not on the shape (see there).
# The client operations get the portal client's id, so that they reach a real client.
cat >"$work/schemathesis.toml" <<EOF
hooks = "$PWD/.ci/schemathesis_hooks.py"

[parameters]
"path.clientId" = "$(credential portal clientId)"

[auth.openapi.PortalAuth]
bearer = "$portal"

[auth.openapi.EngineAuth]
bearer = "$engine"
EOF

seed_args=()
[ "$seed" != random ] && seed_args=(--seed "$seed")
out="$work/out"
# Run from the temp dir: schemathesis and hypothesis keep their caches in the working directory.
(cd "$work" && "$venv/bin/schemathesis" --no-color --config-file "$work/schemathesis.toml" run "$base/openapi.json" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "$examples" \
  --max-time "$max_time" \
  --request-timeout 10 \
  --workers 2 \
  --generation-database none \
  --exclude-tag smooch \
  "${seed_args[@]}") 2>&1 | tee "$out"
status=${PIPESTATUS[0]}

# Its closing line, e.g. `=== 3 warnings in 200.01s ===` or `=== 2 failures in 200.02s ===`,
# with the count of test cases.
summary=$(grep -E '^=+ .+ in [0-9.]+s =+$' "$out" | tail -n1 | sed -E 's/^=+ (.*) =+$/\1/')
cases=$(grep -E '^  [0-9]+ generated' "$out" | tail -n1 | sed -E 's/^ +//')
if [ "$status" -eq 0 ]; then
  say "passed: ${summary:-no summary}; ${cases:-}"
else
  say "FAILED: ${summary:-no summary}; ${cases:-}"
fi
exit "$status"
