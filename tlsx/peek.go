package tlsx

import (
	"errors"
	"io"
	"net"
	"time"
)

// peekChunk is the read size: one read holds a typical hello.
const peekChunk = 4 << 10

// PeekClientHello reads from conn until a whole ClientHello has arrived or
// deadline passes, and returns the hello with every byte it read, so that
// the caller can replay them untouched to an upstream (TLS passthrough) or
// to a TLS server (termination). It reads at most MaxPeekSize bytes. The
// read deadline is cleared before it returns. On error the bytes read so
// far are still returned; err is ErrNotTLS, ErrTooLarge, an ErrMalformed
// error, or the read error (io.ErrUnexpectedEOF when the client closed
// mid-hello, a timeout net.Error when deadline passed).
func PeekClientHello(conn net.Conn, deadline time.Time) (hello ClientHelloInfo, buffered []byte, err error) {
	if err := conn.SetReadDeadline(deadline); err != nil {
		return ClientHelloInfo{}, nil, err
	}
	defer func() {
		if derr := conn.SetReadDeadline(time.Time{}); derr != nil && err == nil {
			err = derr
		}
	}()
	buf := make([]byte, 0, peekChunk)
	// Each pass reads at least one byte or fails, so MaxPeekSize bounds the
	// passes; empty reads are bounded separately.
	empty := 0
	for {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(2*cap(buf), MaxPeekSize))
			copy(grown, buf)
			buf = grown
		}
		n, rerr := conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if n > 0 {
			empty = 0
			hello, err = ParseClientHello(buf)
			if !errors.Is(err, ErrNeedMore) {
				return hello, buf, err
			}
			if len(buf) >= MaxPeekSize {
				return ClientHelloInfo{}, buf, ErrTooLarge
			}
		}
		switch {
		case rerr == io.EOF:
			if len(buf) == 0 {
				return ClientHelloInfo{}, buf, io.EOF
			}
			return ClientHelloInfo{}, buf, io.ErrUnexpectedEOF
		case rerr != nil:
			return ClientHelloInfo{}, buf, rerr
		case n == 0:
			if empty++; empty > 100 {
				return ClientHelloInfo{}, buf, io.ErrNoProgress
			}
		}
	}
}
