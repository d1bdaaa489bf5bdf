//go:build linux

package chaos

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// pattern is the deterministic byte stream of a stream's seed.
func pattern(seed uint64) io.Reader {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

// stream holds one long-lived connection to addr until ctx ends: it
// writes the pattern of seed in 32 KiB chunks (about 1.5 MB/s), reads
// the echo and compares it byte by byte with the same pattern, then
// half-closes and checks that the echo ends exactly where the writes
// did. Any error before ctx ends is a dropped established connection.
func stream(ctx context.Context, c *counters, addr string, seed uint64) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		c.streamDropped.Add(1)
		return
	}
	defer conn.Close()
	c.streams.Add(1)
	var written int64
	werr := make(chan error, 1)
	go func() {
		src := pattern(seed)
		buf := make([]byte, 32<<10)
		for ctx.Err() == nil {
			_, _ = io.ReadFull(src, buf)
			if _, err := conn.Write(buf); err != nil {
				werr <- err
				return
			}
			written += int64(len(buf))
			time.Sleep(20 * time.Millisecond)
		}
		werr <- conn.(*net.TCPConn).CloseWrite()
	}()
	want := pattern(seed)
	got := make([]byte, 32<<10)
	exp := make([]byte, 32<<10)
	var read int64
	for {
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := conn.Read(got)
		if n > 0 {
			_, _ = io.ReadFull(want, exp[:n])
			for i := range n {
				if got[i] != exp[i] {
					c.streamCorrupt.Add(1)
				}
			}
			read += int64(n)
			c.streamBytes.Add(int64(n))
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			c.streamDropped.Add(1)
			<-werr
			return
		}
	}
	if err := <-werr; err != nil || read != written {
		c.streamDropped.Add(1)
	}
}

// shortConns dials addr again and again until ctx ends: each connection
// sends 16 random bytes, reads their echo and closes. The connect latency
// is the dial plus that first echo.
func shortConns(ctx context.Context, c *counters, addr string, rng *rand.Rand) {
	msg := make([]byte, 16)
	got := make([]byte, 16)
	for ctx.Err() == nil {
		for i := range msg {
			msg[i] = byte(rng.Uint32())
		}
		start := time.Now()
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			c.shortFailed.Add(1)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Write(msg)
		if err == nil {
			_, err = io.ReadFull(conn, got)
		}
		conn.Close()
		switch {
		case err != nil:
			c.shortFailed.Add(1)
		case !bytes.Equal(got, msg):
			c.shortCorrupt.Add(1)
		default:
			c.shortOK.Add(1)
			c.connectLat.add(time.Since(start))
		}
	}
}

// udpFlow sends numbered random datagrams to addr from one source port
// until ctx ends, one at a time, and checks each echo.
func udpFlow(ctx context.Context, c *counters, addr string, rng *rand.Rand) {
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return
	}
	conn, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return
	}
	defer conn.Close()
	msg := make([]byte, 512)
	got := make([]byte, 2048)
	for seq := uint64(0); ctx.Err() == nil; seq++ {
		binary.BigEndian.PutUint64(msg, seq)
		for i := 8; i < len(msg); i++ {
			msg[i] = byte(rng.Uint32())
		}
		if _, err := conn.Write(msg); err != nil {
			c.udpLost.Add(1)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		c.udpSent.Add(1)
		deadline := time.Now().Add(time.Second)
		for {
			_ = conn.SetReadDeadline(deadline)
			n, err := conn.Read(got)
			if err != nil {
				c.udpLost.Add(1)
				break
			}
			if n >= 8 && binary.BigEndian.Uint64(got) < seq {
				continue // a late answer to an earlier datagram
			}
			if bytes.Equal(got[:n], msg) {
				c.udpAnswered.Add(1)
			} else {
				c.udpCorrupt.Add(1)
			}
			break
		}
	}
}

// faults connects to the fault routes in turn (addrs: reset, never
// reading, blackhole, slow) until ctx ends. Each connection writes and
// reads as a client would; the gateway must end it (or echo, slowly)
// within 15 s, else it counts as hung.
func faults(ctx context.Context, c *counters, addrs [4]string, rng *rand.Rand) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		kind := rng.IntN(4)
		c.faults[kind].Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.DialTimeout("tcp", addrs[kind], 5*time.Second)
			if err != nil {
				return
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
			var payload []byte
			if kind == 1 {
				payload = make([]byte, 4<<20) // more than the buffers hold
			} else {
				payload = make([]byte, 256)
			}
			_, werr := conn.Write(payload)
			if werr == nil {
				_ = conn.(*net.TCPConn).CloseWrite()
			}
			_, rerr := io.Copy(io.Discard, conn)
			if isTimeout(werr) || isTimeout(rerr) {
				c.faultHung.Add(1)
			}
		}()
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(100+rng.IntN(200)) * time.Millisecond):
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
