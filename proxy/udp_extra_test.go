//go:build linux && !portable

package proxy

import (
	"bufio"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/caddy-apisix/stream/rawsock"
)

// fdTableSize reads the size of this process's descriptor table (FDSize in
// /proc/self/status).
func fdTableSize(t *testing.T) uint64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "FDSize:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatalf("FDSize %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatal("no FDSize in /proc/self/status")
	return 0
}

// A UDP server grows the descriptor table before its first session, so
// that no session's socket(2) waits for the table to grow; descriptors in
// use are left alone, and sessions still work.
func TestUDPReservesDescriptorTable(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	want := min(uint64(rawsock.FDReserve), lim.Cur)
	a := udpEcho(t, "A:")
	rt, _ := newTestRuntime(t, map[string]string{
		"1": `{"upstream":{"nodes":{"` + a + `":1}}}`,
	}, nil)
	servers := make([]*UDPServer, 0, 2)
	for range 2 { // the second server finds the table grown already
		pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		srv, err := rt.NewUDPServer(pc)
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Serve() }()
		t.Cleanup(func() { pc.Close(); srv.Close() })
		servers = append(servers, srv)
		if got := fdTableSize(t); got < want {
			t.Fatalf("descriptor table holds %d slots after NewUDPServer, want at least %d", got, want)
		}
	}
	for i, srv := range servers {
		c, err := net.Dial("udp", srv.pc.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		got, err := udpAsk(t, c, []byte("ping"))
		c.Close()
		if err != nil || string(got) != "A:ping" {
			t.Errorf("server %d: got %q, %v; want %q", i, got, err, "A:ping")
		}
	}
}
