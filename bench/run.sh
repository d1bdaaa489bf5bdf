#!/usr/bin/env bash
# Builds Caddy with this plugin and benchmarks it against the peers with
# shared/bench/peers.sh (see shared/bench/README.md and docs/performance.md).
#
#   bench/run.sh [--routes N] [peers.sh options...]
#
#   bench/run.sh --modes single            # the table in docs/performance.md (~7 min)
#   bench/run.sh --quick --peers nginx     # while iterating (~2 min)
#   bench/run.sh --routes 10000 --modes single --only a,b,c,e
#                                          # 9,999 non-matching routes before ours
#
# Options of this script (everything else goes to peers.sh):
#   --routes N   stream routes loaded (default 1); see bench/candidate.sh
#   --port N     candidate port (default 19030)
# Environment: SHARED (default ../shared from the repository root),
# L4BENCH_CACHE (where the binary goes; default ~/.cache/l4bench),
# L4BENCH_PPROF (see bench/candidate.sh).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared=${SHARED:-$repo/../shared}
[[ -x $shared/bench/peers.sh ]] || { echo "run.sh: $shared/bench/peers.sh not found (set SHARED)" >&2; exit 2; }
shared=$(cd "$shared" && pwd)

routes=1 port=19030 args=()
while (($#)); do
  case $1 in
    --routes) routes=${2:?--routes needs a value}; shift 2 ;;
    --port) port=${2:?--port needs a value}; shift 2 ;;
    -h | --help) sed -n '2,16p' "${BASH_SOURCE[0]}"; exec "$shared/bench/peers.sh" --help ;;
    *) args+=("$1"); shift ;;
  esac
done
[[ $routes =~ ^[0-9]+$ ]] && ((routes >= 1)) || { echo "run.sh: --routes needs a positive number" >&2; exit 2; }

cache=${L4BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/l4bench}
mkdir -p "$cache"
bin=$cache/caddy-apisix-stream
echo "run.sh: building $bin" >&2
(cd "$repo" && go build -trimpath -o "$bin" ./cmd/caddy)

export L4BENCH_ROUTES=$routes
exec "$shared/bench/peers.sh" --candidate "$repo/bench/candidate.sh $bin" --candidate-port "$port" "${args[@]}"
