package syslog

import (
	"net"
	"testing"
	"time"
)

// A syslog server that is down, never reads, or drops datagrams must not
// slow the caller: every Log returns at once, the backlog stays bounded
// and what does not fit is counted as dropped.
func TestUnreachableServerNeverBlocks(t *testing.T) {
	// refused: a port with no listener
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	// stuck: a server that accepts and never reads, so its socket
	// buffers fill and every write would wait for the timeout
	stuck, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	var held []net.Conn
	go func() {
		for {
			c, err := stuck.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()

	// backlog: a listener that never accepts; connects complete in the
	// kernel until its queue fills, then hang until the timeout
	tests := []struct {
		name string
		cfg  Config
	}{
		{"tcp refused", Config{Port: refused}},
		{"udp nobody listening", Config{Network: "udp", Port: refused}},
		{"tcp never reads", Config{Port: stuck.Addr().(*net.TCPAddr).Port, Timeout: time.Second}},
	}
	const n = 20000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.BatchMaxSize, cfg.FlushLimit, cfg.DropLimit, cfg.MaxPendingEntries = 1, 1, 64<<10, 100
			c := newClient(t, cfg)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := range n {
					c.Log(map[string]any{"i": i, "client_ip": "127.0.0.1", "pad": "0123456789abcdef0123456789abcdef"})
				}
			}()
			// A watchdog, not a timing assertion: a caller that waited on
			// the network would wait here for minutes.
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("Log blocked on an unreachable server")
			}
			st := c.Stats()
			if st.Dropped == 0 || st.Logged+st.Dropped < n {
				t.Errorf("stats %+v: want drops and every entry accounted for", st)
			}
			if st.Logged > n-st.Dropped {
				t.Errorf("stats %+v: more logged than offered", st)
			}
		})
	}
}

// Close returns at once even while the worker is stuck on a server that
// never reads; Done follows within the write timeout.
func TestCloseDoesNotWait(t *testing.T) {
	stuck, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	c, err := New(Config{Host: "127.0.0.1", Port: stuck.Addr().(*net.TCPAddr).Port, BatchMaxSize: 1, FlushLimit: 1,
		DropLimit: 64 << 20, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = 'x'
	}
	for range 8 {
		c.Log(map[string]any{"big": string(big)})
	}
	c.Close()
	c.Log(map[string]any{"after": "close"})
	select {
	case <-c.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("Done never closed")
	}
	if st := c.Stats(); st.Dropped == 0 {
		t.Errorf("stats %+v: the entry after Close must count as dropped", st)
	}
}

func TestNewChecks(t *testing.T) {
	for _, cfg := range []Config{
		{Host: "h", Port: 514, Network: "unix"},
		{Host: "", Port: 514},
		{Host: "h", Port: 70000},
		{Host: "h", Port: 514, FlushLimit: 10, DropLimit: 10},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
