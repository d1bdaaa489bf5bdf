//go:build linux && !portable

package rawsock

import (
	"os"

	"golang.org/x/sys/unix"
)

// Epoll is an epoll instance whose descriptor Go's netpoller itself
// polls, so one goroutine can wait on many raw sockets: the UDP server's
// upstream sockets (proxy/udpserver.go), and the idle directions of TCP
// connections that hold no goroutine while they wait (proxy/park_linux.go).
type Epoll struct {
	// File is the epoll descriptor; its SyscallConn's Read runs Wait.
	File   *os.File
	fd     int
	events [64]unix.EpollEvent
	n      int
}

// NewEpoll makes a non-blocking epoll instance; name names its File.
func NewEpoll(name string) (*Epoll, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil, os.NewSyscallError("epoll", err)
	}
	return &Epoll{File: os.NewFile(uintptr(fd), name), fd: fd}, nil
}

// Add watches fd for reading; id comes back from Ready. The watch is
// level-triggered: Ready lists fd again while it has input.
func (e *Epoll) Add(fd int, id uint32) error {
	return e.ctl(unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN, id)
}

// AddOnce watches fd for one event: input, the peer's FIN (EPOLLRDHUP),
// a hang-up or an error, whichever comes first, including one already
// pending when it is added (the watch is level-triggered, so input that
// arrived before the call is reported too). After that event fd stays in
// the set, disabled, until Remove.
func (e *Epoll) AddOnce(fd int, id uint32) error {
	return e.ctl(unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLONESHOT, id)
}

// Remove stops watching fd. Call it before fd is closed: a descriptor
// number reused by the next socket must not inherit the watch.
func (e *Epoll) Remove(fd int) error {
	if err := unix.EpollCtl(e.fd, unix.EPOLL_CTL_DEL, fd, nil); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

func (e *Epoll) ctl(op, fd int, events uint32, id uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(id)}
	if err := unix.EpollCtl(e.fd, op, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// Wait is the epoll descriptor's read callback: it collects the ready
// sockets (see Ready), or returns false to wait for the netpoller.
func (e *Epoll) Wait(fd uintptr) bool {
	for {
		n, err := unix.EpollWait(int(fd), e.events[:], 0)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			e.n = 0
			return true
		case n == 0:
			return false
		}
		e.n = n
		return true
	}
}

// Ready lists the ids of the sockets the last Wait found ready into ids.
func (e *Epoll) Ready(ids []uint32) []uint32 {
	for i := range e.events[:e.n] {
		ids = append(ids, uint32(e.events[i].Fd))
	}
	e.n = 0
	return ids
}
