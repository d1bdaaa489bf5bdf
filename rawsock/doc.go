// Package rawsock holds the data path's raw Linux socket calls: recvmsg
// and sendmsg with packet info for UDP listeners, connected non-blocking
// UDP sockets, epoll, read, write and shutdown for the TCP copy, and the
// descriptor table and RLIMIT_NOFILE set-up.
//
// The calls are raw system calls (RawSyscall): each one never blocks, so
// the Go runtime need not prepare for a blocking call. With the ordinary
// path, every slow call on a busy proxy lets the scheduler's monitor hand
// the P to another thread, and the thread switches that follow cost more
// than the work. Callers run them inside syscall.RawConn callbacks, which
// wait on Go's netpoller when a call returns EAGAIN.
//
// Everything here is Linux-only except ReserveFDs and RaiseNofile, which
// are no-ops elsewhere (other.go), and ConnectUDP, which fails there: on
// other systems the proxy copies with a buffered read/write loop and
// serves UDP with plain net.UDPConn calls (proxy/udpserver_other.go).
package rawsock
