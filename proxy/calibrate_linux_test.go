//go:build linux && !portable

package proxy

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestChooseCopy(t *testing.T) {
	for _, tc := range []struct {
		buffer, splice time.Duration
		want           CopyMode
	}{
		{800 * time.Millisecond, 560 * time.Millisecond, CopySplice}, // the AMD EPYC here
		{800 * time.Millisecond, 720 * time.Millisecond, CopySplice}, // exactly the margin
		{800 * time.Millisecond, 730 * time.Millisecond, CopyBuffer}, // a near tie
		{800 * time.Millisecond, 860 * time.Millisecond, CopyBuffer}, // splice dearer (the Intel Xeon)
		{800 * time.Millisecond, 0, CopyBuffer},                      // nothing measured
	} {
		if got := chooseCopy(tc.buffer, tc.splice); got != tc.want {
			t.Errorf("chooseCopy(%v, %v) = %v, want %v", tc.buffer, tc.splice, got, tc.want)
		}
	}
}

// openFDs is the process's open descriptors, each with what it refers
// to ("pipe:[123]", "socket:[456]"), so that a number closed and reused
// for another object reads as a new descriptor.
func openFDs(t *testing.T) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	fds := make(map[string]string, len(ents))
	for _, e := range ents {
		// the directory's own descriptor is closed by now
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			fds[e.Name()] = l
		}
	}
	return fds
}

// newFDs lists the descriptors open now that were not in before.
func newFDs(t *testing.T, before map[string]string) []string {
	t.Helper()
	var opened []string
	for fd, l := range openFDs(t) {
		if before[fd] != l {
			opened = append(opened, fd+" -> "+l)
		}
	}
	slices.Sort(opened)
	return opened
}

// Setting auto starts the measurement: it ends with both stages
// measured, logs its figures and choice, leaves no descriptor behind, and
// connections, one of them opened before it ended, take the chosen stage
// with every byte intact.
func TestAutoCopyCalibrates(t *testing.T) {
	echo := tcpEcho(t)
	rt, _ := newTestRuntime(t, map[string]string{"r": `{"upstream":{"nodes":{"` + echo + `":1}}}`}, nil)
	// no direction parks: the parker's epoll instance, made by the first
	// to park, stays open for the runtime's life
	rt.copies.parkAfter.Store(0)
	core, logs := observer.New(zap.InfoLevel)
	rt.SetLogger(zap.New(core))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() { _ = rt.ServeTCP(ln, ListenerOptions{}) }()
	before := openFDs(t)
	rt.SetTCPCopy(CopyAuto)

	roundTrip := func(size int) {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		msg := make([]byte, size)
		_, _ = rand.NewChaCha8([32]byte{byte(size)}).Read(msg)
		go func() { _, _ = c.Write(msg); _ = c.(*net.TCPConn).CloseWrite() }()
		got, err := io.ReadAll(c)
		if err != nil || sha256.Sum256(got) != sha256.Sum256(msg) {
			t.Fatalf("echo of %d bytes: %d bytes back, equal %v, %v", size, len(got), bytes.Equal(got, msg), err)
		}
	}
	roundTrip(1 << 20)
	deadline := time.Now().Add(20 * time.Second)
	for rt.CopyCalibration() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	c := rt.CopyCalibration()
	if c == nil {
		t.Fatalf("no calibration 20 s after the first connection; logs: %v", logs.All())
	}
	if c.Buffer <= 0 || c.Splice <= 0 || c.Chosen != chooseCopy(c.Buffer, c.Splice) {
		t.Fatalf("calibration %+v: want both stages measured and the cheaper chosen", *c)
	}
	t.Logf("measured: buffer %v/GB, splice %v/GB, chose %v", c.Buffer, c.Splice, c.Chosen)
	entries := logs.FilterMessageSnippet("tcp_copy auto").All()
	if len(entries) != 1 {
		t.Fatalf("%d tcp_copy auto log lines, want 1: %v", len(entries), logs.All())
	}
	if f := entries[0].ContextMap(); f["chosen"] != c.Chosen.String() || f["buffer_cpu_per_gb"] == nil || f["splice_cpu_per_gb"] == nil {
		t.Errorf("log fields %v, want chosen %v and both figures", f, c.Chosen)
	}
	// the measurement's sockets and pipes are closed (the proxied
	// connection's are, once the echo ended). The runtime's pool is
	// emptied first: a pipe the connection took once the measurement
	// chose splice is kept there for the next connection, while the
	// measurement's pipes are its own (calibrateCopy).
	for {
		rt.copies.pipes.Drain()
		left := newFDs(t, before)
		if len(left) == 0 {
			break
		}
		if !time.Now().Before(deadline) {
			t.Errorf("%d descriptors open after the calibration that were not before: %v", len(left), left)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	roundTrip(8 << 20)
}

// A direction in auto mode chooses its stage each time it takes one: the
// buffer before the measurement ended, then the chosen stage; explicit
// modes never change.
func TestAutoStageFollowsCalibration(t *testing.T) {
	src, _ := tcpPair(t)
	dst, _ := tcpPair(t)
	var stages copyStages
	defer stages.pipes.Drain()
	stageOf := func(m CopyMode) string {
		t.Helper()
		c := newRawCopier(dst, src, &link{mode: m, stages: &stages}, new(atomic.Int64))
		if c == nil {
			t.Fatal("no raw copier for plain TCP")
		}
		if err := c.take(); err != nil {
			t.Fatal(err)
		}
		defer c.putStage()
		switch {
		case c.pipe != nil && c.buf == nil && c.splice:
			return "splice"
		case c.buf != nil && c.pipe == nil && !c.splice:
			return "buffer"
		}
		return "inconsistent"
	}
	// one direction of a connection opened before the measurement ended
	early := newRawCopier(dst, src, &link{mode: CopyAuto, stages: &stages}, new(atomic.Int64))
	if err := early.take(); err != nil || early.buf == nil {
		t.Fatalf("before the measurement: buffer %v, %v; want the buffer", early.buf != nil, err)
	}
	early.putStage()
	stages.calibrated.Store(&CopyCalibration{Chosen: CopySplice})
	if err := early.take(); err != nil || early.pipe == nil || !early.splice {
		t.Fatalf("after it chose splice: pipe %v, %v; want the pipe", early.pipe != nil, err)
	}
	early.putStage()

	for _, step := range []struct {
		calibrated               *CopyCalibration
		auto, buffer, spliceMode string
	}{
		{nil, "buffer", "buffer", "splice"},
		{&CopyCalibration{Chosen: CopySplice}, "splice", "buffer", "splice"},
		{&CopyCalibration{Chosen: CopyBuffer}, "buffer", "buffer", "splice"},
	} {
		stages.calibrated.Store(step.calibrated)
		for m, want := range map[CopyMode]string{CopyAuto: step.auto, CopyBuffer: step.buffer, CopySplice: step.spliceMode} {
			if got := stageOf(m); got != want {
				t.Errorf("calibrated %+v, mode %v: stage %s, want %s", step.calibrated, m, got, want)
			}
		}
	}
}
