//go:build linux && !portable

package proxy

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A UDP listener whose reply poller cannot be made (no descriptor left)
// is refused by NewUDPServer, so the app's Start fails naming the
// listener, instead of binding a socket that never serves. The check runs
// in a child process: it lowers RLIMIT_NOFILE for good.
func TestUDPServerWithoutDescriptors(t *testing.T) {
	if os.Getenv("UDP_NOFD_CHILD") == "1" {
		udpServerWithoutDescriptors()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestUDPServerWithoutDescriptors$", "-test.count=1")
	cmd.Env = append(os.Environ(), "UDP_NOFD_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "refused: udp 127.0.0.1:") || !strings.Contains(string(out), "too many open files") {
		t.Fatalf("NewUDPServer did not fail with EMFILE:\n%s", out)
	}
}

func udpServerWithoutDescriptors() {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		panic(err)
	}
	// the lowest free descriptor becomes the limit: every one below it
	// is in use, so the next one fails with EMFILE
	free, err := unix.Dup(0)
	if err != nil {
		panic(err)
	}
	_ = unix.Close(free)
	lim := unix.Rlimit{Cur: uint64(free), Max: uint64(free)}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		panic(err)
	}
	rt := NewRuntime(nil)
	srv, err := rt.NewUDPServer(pc)
	if err == nil {
		srv.Close()
		println("NewUDPServer succeeded")
		return
	}
	println("refused: " + err.Error())
}
