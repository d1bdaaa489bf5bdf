//go:build linux && !portable

package proxy

// portableUDP is whether the tests run the portable UDP server
// (udpserver_other.go) rather than Linux's epoll one.
const portableUDP = false
