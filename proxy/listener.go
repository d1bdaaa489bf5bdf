package proxy

import (
	"errors"
	"net"
	"runtime"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/rawsock"
)

// maxIdlePreludeWorkers bounds how many prelude workers of one listener
// wait for the next connection (preludeWorkers): four per P. A worker's
// stack has grown to what a prelude needs (about 8 KiB); more idle ones
// than the preludes that run at once would only hold memory. With one P
// and 50 concurrent clients (l4load connrate), 4 and 16 both served 80 %
// of connections on an idle worker.
func maxIdlePreludeWorkers() int32 { return 4 * int32(runtime.GOMAXPROCS(0)) }

// preludeWorkers are the goroutines that run connections' preludes
// (serveStream: preread, match, dial, up to the start of the copy) for
// one listener. A fresh goroutine starts with Go's smallest stack and a
// prelude grows it twice, each time copying the stack and walking its
// frames (about 4 % of the proxy's CPU per connection in a profile of
// l4load connrate, docs/performance.md change 16): a worker keeps its
// grown stack from one connection to the next, and the goroutine is
// neither created nor destroyed per connection.
type preludeWorkers struct {
	rt   *Runtime
	opts ListenerOptions
	// next hands a connection to an idle worker; closed when the
	// listener's ServeTCP returns, which ends the idle workers.
	next chan net.Conn
	// idle counts the workers waiting on next, at most maxIdle.
	idle    atomic.Int32
	maxIdle int32
}

// serve runs conn's prelude on an idle worker, or on a new one when none
// waits.
func (w *preludeWorkers) serve(conn net.Conn) {
	select {
	case w.next <- conn:
	default:
		go w.run(conn)
	}
}

// run serves conn, then waits for the next connection while fewer than
// maxIdle others wait.
func (w *preludeWorkers) run(conn net.Conn) {
	for {
		// async: serveStream returns once bytes flow, the copy
		// goroutines end the connection
		w.rt.serveStream(conn, nil, w.opts, true)
		if w.idle.Add(1) > w.maxIdle {
			w.idle.Add(-1)
			return
		}
		c, ok := <-w.next
		w.idle.Add(-1)
		if !ok {
			return
		}
		conn = c
	}
}

// ServeTCP accepts connections on ln until it is closed, serving each
// on a prelude worker (preludeWorkers).
func (rt *Runtime) ServeTCP(ln net.Listener, opts ListenerOptions) error {
	rawsock.ReserveFDs()
	w := &preludeWorkers{rt: rt, opts: opts, next: make(chan net.Conn), maxIdle: maxIdlePreludeWorkers()}
	// only this goroutine sends on next
	defer close(w.next)
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
		w.serve(conn)
	}
}
