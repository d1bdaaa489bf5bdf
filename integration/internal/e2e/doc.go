//go:build linux

// Package e2e holds the helpers that the end-to-end test packages under
// integration/ share: building the caddy binary once per test run,
// running background processes (Caddy and real servers) that a test stops
// by PID, Caddy JSON configs, the Admin API over HTTP, free loopback
// ports, TCP servers and self-signed certificates.
//
// It is internal so that only those packages use it; helpers that one
// package alone needs stay in that package.
package e2e
