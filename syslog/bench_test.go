package syslog

import (
	"net"
	"testing"
)

// BenchmarkLog is the caller's cost of one entry (encoding, framing,
// queueing) with a UDP server that reads nothing: the network is the
// worker's business.
func BenchmarkLog(b *testing.B) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	c, err := New(Config{Network: "udp", Host: "127.0.0.1", Port: pc.LocalAddr().(*net.UDPAddr).Port,
		BatchMaxSize: 100, FlushLimit: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	entry := map[string]any{"client_ip": "127.0.0.1", "route_id": "1", "status": "200", "bytes_sent": "1234"}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		_ = c.Log(entry)
	}
}
