#!/usr/bin/env bash
# Candidate wrapper for shared/bench/peers.sh: turns the harness's L4BENCH_*
# variables into an "apisix" app config (one stream_proxy listener, one
# upstream, one stream route, plus a static SSL object for tls) and runs the
# plugin's Caddy in the foreground.
#
#   peers.sh --candidate 'bench/candidate.sh /path/to/caddy' --candidate-port 19030
#
# Environment (besides what peers.sh sets):
#   L4BENCH_ROUTES=N   load N stream routes: N-1 that do not match (each with
#                      its own server_port, or the listener's port and a
#                      remote_addr that is not the client's) and the matching
#                      one last, in APISIX order (config order, and last by id).
#                      Default 1.
#   L4BENCH_PPROF=ADDR enable Caddy's admin endpoint on ADDR (e.g.
#                      127.0.0.1:2019) so that /debug/pprof/ can be read:
#                      go tool pprof http://ADDR/debug/pprof/profile?seconds=5
#                      Default: admin disabled.
#   L4BENCH_COPY=MODE  stream_proxy.tcp_copy: auto, buffer or splice (how
#                      plain TCP bytes are moved, docs/performance.md change
#                      14), to compare the copy modes in one run. Default:
#                      unset (the plugin's default, auto).
set -euo pipefail
caddy=${1:?usage: candidate.sh /path/to/caddy}
: "${L4BENCH_PROTO:?run me from peers.sh}" "${L4BENCH_LISTEN:?}" "${L4BENCH_PORT:?}" "${L4BENCH_UPSTREAM:?}" "${L4BENCH_WORKDIR:?}"
routes=${L4BENCH_ROUTES:-1}
[[ $routes =~ ^[0-9]+$ ]] && ((routes >= 1 && routes <= 40000)) || { echo "L4BENCH_ROUTES must be 1..40000, got $routes" >&2; exit 2; }
port=$L4BENCH_PORT

# JSON string of a PEM file: PEM holds only base64, '-', ' ' and newlines.
pem_json() {
  local s
  s=$(<"$1")
  s=${s//$'\r'/}
  printf '"%s\\n"' "${s//$'\n'/\\n}"
}

case $L4BENCH_PROTO in
  tcp) proxy='"tcp":["'$L4BENCH_LISTEN'"]' ;;
  udp) proxy='"udp":["'$L4BENCH_LISTEN'"]' ;;
  tls) proxy='"tcp":[{"addr":"'$L4BENCH_LISTEN'","tls":true}]' ;;
  *) echo "unknown L4BENCH_PROTO $L4BENCH_PROTO" >&2; exit 2 ;;
esac
case ${L4BENCH_COPY:-} in
  "") ;;
  auto | buffer | splice) proxy+=',"tcp_copy":"'$L4BENCH_COPY'"' ;;
  *) echo "L4BENCH_COPY must be auto, buffer or splice, got $L4BENCH_COPY" >&2; exit 2 ;;
esac

ssls=""
if [[ $L4BENCH_PROTO == tls ]]; then
  : "${L4BENCH_CERT:?}" "${L4BENCH_KEY:?}"
  # l4load's TLS client sends ServerName "localhost"
  ssls=',"ssls":[{"id":"bench","snis":["localhost","*.localhost"],"cert":'$(pem_json "$L4BENCH_CERT")',"key":'$(pem_json "$L4BENCH_KEY")'}]'
fi

admin='"admin":{"disabled":true}'
if [[ -n ${L4BENCH_PPROF:-} ]]; then
  admin='"admin":{"listen":"'$L4BENCH_PPROF'"}'
fi

cfg=$L4BENCH_WORKDIR/candidate.json
{
  printf '{%s,\n "logging":{"logs":{"default":{"level":"WARN"}}},\n' "$admin"
  printf ' "storage":{"module":"file_system","root":"%s/data"},\n' "$L4BENCH_WORKDIR"
  printf ' "apps":{"apisix":{"stream_proxy":{%s},\n' "$proxy"
  printf '  "upstreams":[{"id":"bench","type":"roundrobin","nodes":{"%s":1}}]%s,\n' "$L4BENCH_UPSTREAM" "$ssls"
  printf '  "stream_routes":[\n'
  # non-matching routes: odd ones share the listener's port but want another
  # client address (10.x.y.z), even ones want another port
  for ((i = 1; i < routes; i++)); do
    if ((i % 2)); then
      printf '   {"id":"n%05d","server_port":%d,"remote_addr":"10.%d.%d.%d","upstream_id":"bench"},\n' \
        "$i" "$port" $((i >> 16 & 255)) $((i >> 8 & 255)) $((i & 255))
    else
      other=$((20000 + i))
      ((other != port)) || other=$((20000 + routes + 1))
      printf '   {"id":"n%05d","server_port":%d,"upstream_id":"bench"},\n' "$i" "$other"
    fi
  done
  printf '   {"id":"x-bench","server_port":%d,"upstream_id":"bench"}]}}}\n' "$port"
} >"$cfg"

# L4BENCH_THREADS=0 means Go's default; peers.sh sets GOMAXPROCS in single mode
if [[ ${L4BENCH_THREADS:-0} =~ ^[1-9][0-9]*$ ]]; then
  export GOMAXPROCS=$L4BENCH_THREADS
fi
export XDG_DATA_HOME=$L4BENCH_WORKDIR XDG_CONFIG_HOME=$L4BENCH_WORKDIR
exec "$caddy" run --config "$cfg"
