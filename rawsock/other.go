//go:build !linux || portable

package rawsock

import "errors"

// ErrUnsupported is what the Linux-only raw socket calls return on other
// systems; the data path takes its portable paths there instead.
var ErrUnsupported = errors.New("rawsock: raw sockets are only used on Linux")

// ReserveFDs does nothing outside Linux: the descriptor-table growth
// stall it avoids (expand_fdtable) is Linux's.
func ReserveFDs() {}

// RaiseNofile leaves RLIMIT_NOFILE as it is outside Linux and returns 0,
// "unknown": the data path then keeps no descriptor reserve for UDP
// sessions (Go's runtime raises the soft limit at start on the BSDs and
// macOS itself).
func RaiseNofile() int64 { return 0 }

// ConnectUDP is Linux-only (the epoll UDP server's raw upstream
// sockets); elsewhere it fails with ErrUnsupported.
func ConnectUDP(string) (int, error) { return -1, ErrUnsupported }

// PipePool is empty outside Linux: the splice copy it serves is
// Linux-only.
type PipePool struct{}
