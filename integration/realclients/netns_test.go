//go:build linux

package realclients

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
	"golang.org/x/sys/unix"
)

// Bounds of the waits in this package.
const (
	startWait = 30 * time.Second // a server starts listening
	stopWait  = 5 * time.Second  // SIGTERM before SIGKILL
	cmdWait   = 60 * time.Second // one client command runs to its end
)

// netns is a private network namespace with only a loopback interface,
// held open by a sleeping process. Every program of a test runs in it
// through nsenter, so the documents' fixed ports are free and nothing
// can reach an address outside 127.0.0.0/8 and ::1.
type netns struct {
	t      testing.TB
	holder *exec.Cmd
	path   string // /proc/PID/ns/net of the holder
	dir    string // the test's temp dir
}

// newNetns creates the namespace, brings its loopback up and removes it
// (by stopping the holder by PID) when the test ends.
func newNetns(t testing.TB) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "a private network namespace needs root")
	}
	paths := need(t, "nsenter", "ip")
	// The holder's sleep is bounded: it outlives any test of this package.
	holder := exec.Command("sleep", "900")
	holder.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := holder.Start(); err != nil {
		unavailable(t, fmt.Sprintf("cannot create a network namespace: %v", err))
	}
	n := &netns{t: t, holder: holder, path: fmt.Sprintf("/proc/%d/ns/net", holder.Process.Pid), dir: t.TempDir()}
	t.Cleanup(func() {
		_ = holder.Process.Kill()
		_ = holder.Wait()
	})
	up := exec.Command(paths["nsenter"], "--net="+n.path, "--", paths["ip"], "link", "set", "lo", "up")
	if out, err := up.CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up in the namespace: %v\n%s", err, out)
	}
	return n
}

// command is name args run inside the namespace. nsenter execs the
// program without forking (only the network namespace is entered), so
// the command's PID is the program's.
func (n *netns) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	path, err := lookPath(name)
	if err != nil {
		path = name // exec reports it
	}
	nsenter, _ := lookPath("nsenter")
	cmd := exec.CommandContext(ctx, nsenter, append([]string{"--net=" + n.path, "--", path}, args...)...)
	cmd.Dir = n.dir
	cmd.Env = isolatedEnv(n.dir)
	cmd.WaitDelay = stopWait
	return cmd
}

// isolatedEnv is e2e.Env with the Go caches pinned where they are, so go
// run and xcaddy reuse the module and build caches instead of downloading
// and compiling everything again.
func isolatedEnv(dir string) []string { return e2e.Env(dir, goEnv...) }

// result is what a finished command printed.
type result struct {
	stdout, stderr string
	err            error
}

// combined is stdout then stderr.
func (r result) combined() string { return r.stdout + r.stderr }

// run runs a command in the namespace to its end, bounded by cmdWait,
// with stdin as its standard input.
func (n *netns) run(stdin string, name string, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), cmdWait)
	defer cancel()
	cmd := n.command(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdin = bytes.NewBufferString(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s did not finish within %v: %w", name, cmdWait, err)
	}
	return result{out.String(), errb.String(), err}
}

// start starts a server in the namespace and stops it by PID (SIGTERM,
// then SIGKILL) when the test ends; its output is logged if the test
// failed.
func (n *netns) start(name string, args ...string) *e2e.Proc {
	n.t.Helper()
	return n.startFor(n.t, name, args...)
}

// startFor is start for a subtest t: its failures and cleanup belong to t.
func (n *netns) startFor(t testing.TB, name string, args ...string) *e2e.Proc {
	t.Helper()
	return n.startCmd(t, false, n.command(context.Background(), name, args...))
}

// startGroup starts a command that runs children of its own (go run
// builds and runs the program as a child) in a new process group, which
// stop signals as a whole: the group's ID is the started PID.
func (n *netns) startGroup(t testing.TB, dir string, name string, args ...string) *e2e.Proc {
	t.Helper()
	cmd := n.command(context.Background(), name, args...)
	cmd.Dir = dir
	return n.startCmd(t, true, cmd)
}

// startCmd starts cmd in the background; see start.
func (n *netns) startCmd(t testing.TB, group bool, cmd *exec.Cmd) *e2e.Proc {
	t.Helper()
	name := filepath.Base(cmd.Args[3]) // nsenter --net=… -- program
	return e2e.Start(t, name, cmd, e2e.Options{StopWait: stopWait, Group: group, LogTail: 8 << 10})
}

// dial opens a connection from inside the namespace: the socket is made
// on an OS thread that joined the namespace for that moment, and a socket
// keeps its namespace wherever it is used afterwards. The thread returns
// to its own namespace before it is unlocked; if it cannot, it stays
// locked and the runtime discards it with the goroutine. (Threads must
// survive: a thread's exit would fire the Pdeathsig of the processes it
// started.)
func (n *netns) dial(network, addr string) (net.Conn, error) {
	type answer struct {
		c   net.Conn
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			ch <- answer{nil, err}
			return
		}
		defer home.Close()
		target, err := os.Open(n.path)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- answer{nil, err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- answer{nil, fmt.Errorf("setns: %w", err)}
			return
		}
		c, err := net.DialTimeout(network, addr, 2*time.Second)
		if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- answer{c, err}
	}()
	a := <-ch
	return a.c, a.err
}

// tcpReady is a readiness check: addr accepts TCP connections.
func (n *netns) tcpReady(addr string) func() error {
	return func() error {
		c, err := n.dial("tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// hostPort joins a loopback address and a port.
var hostPort = e2e.HostPort
