//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Buffer collects a process's output; it is safe for concurrent use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Options tune how Start runs and stops a process.
type Options struct {
	// StopWait is how long Stop waits after SIGTERM before SIGKILL, and
	// Kill for the exit; default 10 s.
	StopWait time.Duration
	// Group runs the process in a process group of its own, which Stop
	// signals as a whole (go run's child outlives its parent otherwise).
	Group bool
	// CleanExit makes Stop fail the test unless the process exits with
	// code 0 within StopWait of its SIGTERM.
	CleanExit bool
	// LogTail is how many bytes of the output's end Stop logs when the
	// test failed; default 16 KiB.
	LogTail int
}

// Proc is one background process of a test, stopped by PID when the
// test ends.
type Proc struct {
	// Name names the process in messages.
	Name string
	// Cmd is the started command; Cmd.ProcessState is set once Done is
	// closed.
	Cmd  *exec.Cmd
	t    testing.TB
	opts Options
	out  *Buffer
	done chan struct{}
}

// Start starts cmd with its output collected, and registers Stop as a
// cleanup of t. The process gets SIGKILL if the test binary dies first.
func Start(t testing.TB, name string, cmd *exec.Cmd, opts Options) *Proc {
	t.Helper()
	if opts.StopWait == 0 {
		opts.StopWait = 10 * time.Second
	}
	if opts.LogTail == 0 {
		opts.LogTail = 16 << 10
	}
	p := &Proc{Name: name, Cmd: cmd, t: t, opts: opts, out: new(Buffer), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: opts.Group}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	noteProc(p)
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		p.logIfFailed()
	})
	return p
}

// PID is the process id.
func (p *Proc) PID() int { return p.Cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output is what the process printed so far, stdout and stderr.
func (p *Proc) Output() string { return p.out.String() }

// WaitReady polls ready until it succeeds, and fails the test when the
// process exits first or wait passes; the last error says why.
func (p *Proc) WaitReady(wait time.Duration, ready func() error) {
	p.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		if p.Exited() {
			p.t.Fatalf("%s exited during startup (%v):\n%s", p.Name, p.Cmd.ProcessState, p.out)
		}
		err := ready()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s not ready after %v: %v\n%s", p.Name, wait, err, p.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the process by PID: SIGTERM, then SIGKILL after StopWait.
// It does nothing once the process has exited. The cleanup that Start
// registers calls it, then logs the output's tail if the test failed.
func (p *Proc) Stop() {
	pid := p.PID()
	if p.opts.Group {
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		deadline := time.Now().Add(p.opts.StopWait)
		for syscall.Kill(-pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if syscall.Kill(-pid, 0) == nil {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
	if !p.Exited() {
		_ = p.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			// a clean stop exits 0; anything else means the stop failed
			if code := p.Cmd.ProcessState.ExitCode(); p.opts.CleanExit && code != 0 {
				p.t.Errorf("%s exited with code %d after SIGTERM", p.Name, code)
			}
		case <-time.After(p.opts.StopWait):
			_ = p.Cmd.Process.Kill()
			<-p.done
			if p.opts.CleanExit {
				p.t.Errorf("%s did not exit within %v of SIGTERM; killed", p.Name, p.opts.StopWait)
			}
		}
	}
}

// logIfFailed logs the output's tail when the test failed.
func (p *Proc) logIfFailed() {
	if !p.t.Failed() {
		return
	}
	out := p.out.String()
	if len(out) > p.opts.LogTail {
		out = "…" + out[len(out)-p.opts.LogTail:]
	}
	p.t.Logf("%s (pid %d) output:\n%s", p.Name, p.PID(), out)
}

// Kill sends SIGKILL to the process by PID and waits for it to exit,
// failing the test if it has not within StopWait.
func (p *Proc) Kill() {
	_ = syscall.Kill(p.PID(), syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(p.opts.StopWait):
		p.t.Fatalf("%s pid %d did not exit after SIGKILL", p.Name, p.PID())
	}
}

// LimitNofile makes cmd run with RLIMIT_NOFILE at n, soft and hard, through
// util-linux's prlimit(1): the process cannot raise it.
func LimitNofile(t testing.TB, cmd *exec.Cmd, n int) {
	t.Helper()
	path, err := exec.LookPath("prlimit")
	if err != nil {
		t.Fatalf("prlimit (Debian package util-linux) is needed to run with a low descriptor limit: %v", err)
	}
	cmd.Args = append([]string{"prlimit", fmt.Sprintf("--nofile=%d:%d", n, n), "--", cmd.Path}, cmd.Args[1:]...)
	cmd.Path = path
}
