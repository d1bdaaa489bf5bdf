#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the real servers and clients
# the tests use (idempotently), checks formatting, vet and staticcheck, then
# runs every test. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(mariadb-server mariadb-client redis-server redis-tools dnsmasq-base dnsutils openssl curl iproute2 mosquitto mosquitto-clients rsyslog)
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
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	rm -f /usr/sbin/policy-rc.d
fi

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [[ -n "$unformatted" ]]; then
	echo "gofmt: not formatted:"; echo "$unformatted"; exit 1
fi
go vet ./...
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# CI=true makes tests that need a real client or server fail instead of skip.
go test -count=1 -timeout 10m $(go list ./... | grep -v /integration)
# The end-to-end packages run one at a time: some replay documents with
# fixed ports (the Admin API on 127.0.0.1:9180), and SO_REUSEPORT, which
# Caddy and this plugin use, would let two of them share a port silently.
go test -count=1 -p 1 -timeout 20m ./integration/...
