#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the real servers and clients
# the tests use (idempotently), checks formatting, vet and staticcheck, then
# runs every test. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(systemd mariadb-server mariadb-client redis-server redis-tools dnsmasq-base dnsutils openssl curl iproute2 etcd-server mosquitto mosquitto-clients rsyslog chromium rsyslog-gnutls postgresql postgresql-client bsdutils prometheus)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "installing: ${missing[*]}"
	# keep Debian from starting the services: the tests start their own
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	rm -f /usr/sbin/policy-rc.d
fi

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [[ -n "$unformatted" ]]; then
	echo "gofmt: not formatted:"; echo "$unformatted"; exit 1
fi
go vet ./...
# the portable paths (no splice, epoll or pktinfo) must keep building
for os in darwin freebsd windows; do
	GOOS=$os go build ./...
	GOOS=$os go vet ./...
done
# and pass the data path's tests, run on Linux with -tags portable
go test -count=1 -tags portable ./proxy/ ./rawsock/
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# CI=true makes tests that need a real client or server fail instead of skip.
go test -count=1 -timeout 10m $(go list ./... | grep -v /integration)

# End-to-end packages: each in a private network namespace (only a
# loopback interface), so documents with fixed ports (the Admin API on
# 127.0.0.1:9180) cannot meet, and nothing leaves the machine. They run
# E2E_JOBS at a time and share one build of ./cmd/caddy. realclients puts
# every program it starts in namespaces of its own and needs the module
# proxy for its xcaddy build, so it runs on the host.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/caddy" ./cmd/caddy
export APISIX_E2E_CADDY="$work/caddy"
mapfile -t e2e < <(go list ./integration/...)
parallel=${E2E_JOBS:-3}
log_of() { echo "$work/${1//\//_}.log"; }
run_e2e() { # package log
	local rc=0
	if [[ "$1" == */integration/realclients ]]; then
		go test -count=1 -timeout 20m "$1" >"$2" 2>&1 || rc=$?
	else
		unshare -n sh -c 'ip link set lo up && exec go test -count=1 -timeout 20m "$0"' "$1" >"$2" 2>&1 || rc=$?
	fi
	echo $rc >"$2.rc"
}
for pkg in "${e2e[@]}"; do
	while (($(jobs -rp | wc -l) >= parallel)); do wait -n || true; done
	run_e2e "$pkg" "$(log_of "$pkg")" &
done
wait
failed=0
for pkg in "${e2e[@]}"; do
	log=$(log_of "$pkg")
	cat "$log"
	[[ "$(cat "$log.rc")" == 0 ]] || { echo "FAIL: $pkg"; failed=1; }
done
exit $failed
