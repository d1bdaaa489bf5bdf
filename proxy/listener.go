package proxy

import (
	"errors"
	"net"
	"time"

	"go.uber.org/zap"
)

// ServeTCP accepts connections on ln until it is closed, serving each in
// its own goroutine.
func (rt *Runtime) ServeTCP(ln net.Listener, opts ListenerOptions) error {
	reserveFDs()
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// out of fds or similar: back off instead of spinning
			backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
			rt.Logger().Error("accepting connection", zap.Error(err), zap.Duration("retry_in", backoff))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !rt.admitTCP() {
			_ = conn.Close()
			continue
		}
		// async: the goroutine ends once bytes flow (see serveStream)
		go rt.serveStream(conn, nil, opts, true)
	}
}
