//go:build linux

// Package realclients proves the plugin with the real servers and clients
// a user has: MariaDB and the mysql client, Redis with redis-cli and
// redis-benchmark, dnsmasq with dig, OpenSSL's s_client and s_server, curl
// for the Admin API, xcaddy for custom builds, and the README's quick
// start on a clean copy of the committed tree.
//
// Every test runs its servers as plain processes (Debian packages, temp
// directories, stopped by PID) inside a private network namespace of its
// own, so the fixed addresses of the documents (the Admin API on
// 127.0.0.1:9180, MariaDB on 127.0.0.1:3306, listeners on 9100 and
// 127.0.0.10:9101) are always free and no packet can leave the loopback
// interface. That needs root (CI runs as root). A missing client, server or
// root fails the test when CI=true and skips it otherwise.
//
// The package holds tests only; run them from the module root with
//
//	go test ./integration/realclients/
//
// The seed document's commands are read from testdata/, a copy of
// shared/seed/apisix-stream-proxy.md, and the README's commands from the
// committed README.md.
package realclients
