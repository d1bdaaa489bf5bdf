//go:build linux

// Package tlse2e is the end-to-end proof of the stream proxy's TLS data
// path: its tests build the caddy binary once, start real Caddy processes
// with JSON configs on loopback ports, and drive them with real TLS
// clients (crypto/tls and openssl s_client) against Go backends that
// report what they received: certificate choice by SNI, fallback_sni,
// disabled and hot-swapped SSL objects, route sni priority, mTLS, TLS
// passthrough and mixed listeners, TLS upstreams with SNI, client
// certificates and verification, and PROXY protocol in and out.
//
// The package holds tests only; run them with
//
//	go test ./integration/tlse2e/
//	go test -run '^$' -bench TLSHandshake ./integration/tlse2e/
package tlse2e
