package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Counters are the bytes a proxied connection moved, kept by the proxy
// itself since spliced bytes never pass through a reader it could count.
type Counters struct {
	// Sent is client → upstream, Received is upstream → client.
	Sent, Received atomic.Int64
}

// pump copies both ways between client and upstream until both directions
// have ended, honouring half-close (EOF on one side becomes a FIN on the
// other), and gives up when nothing moved in either direction for idle.
// It closes neither connection.
func pump(client, upstream net.Conn, idle time.Duration, c *Counters) {
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		copyDir(client, upstream, idle, &last, &c.Received)
	}()
	copyDir(upstream, client, idle, &last, &c.Sent)
	wg.Wait()
}

// copyDir moves src → dst. On EOF it half-closes dst; on an error or an
// idle timeout it unblocks the other direction by expiring both sockets.
func copyDir(dst, src net.Conn, idle time.Duration, last *atomic.Int64, count *atomic.Int64) {
	var (
		err      error
		srcRaw   syscall.RawConn
		dstRaw   syscall.RawConn
		spliced  bool
		buf      *[]byte
		deadline time.Time
	)
	srcRaw, dstRaw, spliced = rawConns(src, dst)
	if !spliced {
		buf = bufPool.Get().(*[]byte)
		defer bufPool.Put(buf)
	}
	for {
		// re-arm the deadline only when it would expire within idle/2:
		// cheaper than a timer update per chunk, same precision.
		now := time.Now()
		if deadline.Sub(now) < idle/2 {
			deadline = now.Add(idle)
			_ = src.SetReadDeadline(deadline)
			_ = dst.SetWriteDeadline(deadline)
		}
		var n int64
		if spliced {
			n, err = spliceOnce(dstRaw, srcRaw)
			if err == nil && n == 0 {
				err = io.EOF
			}
		} else {
			var m int
			m, err = src.Read(*buf)
			if m > 0 {
				w, werr := dst.Write((*buf)[:m])
				n = int64(w)
				if werr != nil && (err == nil || err == io.EOF) {
					err = werr
				}
			}
		}
		if n > 0 {
			count.Add(n)
			last.Store(time.Now().UnixNano())
		}
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// idle only if the other direction was quiet too
			quiet := time.Since(time.Unix(0, last.Load()))
			if quiet < idle {
				deadline = time.Time{}
				continue
			}
		}
		break
	}
	if err == io.EOF {
		if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			return
		}
	}
	// hard end: wake the other direction too
	past := time.Unix(1, 0)
	_ = src.SetDeadline(past)
	_ = dst.SetDeadline(past)
}

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}
