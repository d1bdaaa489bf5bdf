package proxy

import (
	"errors"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/rawsock"
)

// ServeTCP accepts connections on ln until it is closed, serving each in
// its own goroutine.
func (rt *Runtime) ServeTCP(ln net.Listener, opts ListenerOptions) error {
	rawsock.ReserveFDs()
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// out of fds or similar: back off instead of spinning, and
			// warn at most every ratewarn.Every while it lasts
			backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
			if n, ok := rt.acceptWarn.Allow(time.Now()); ok {
				rt.Logger().Warn("accepting connections fails; retrying", zap.Error(err),
					zap.Duration("retry_in", backoff), zap.Int64("failures_since_last_warning", n))
			}
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
