package mqtt

import (
	"errors"
	"io"
)

// ReadConnect reads from r until the bytes read hold a whole CONNECT
// packet, a refused one, or MaxPacketSize bytes. It returns every byte it
// read (the packet and whatever followed it in the same reads), which the
// caller must forward to the upstream untouched, also on error when it
// forwards at all. A stream that ends before the packet does gives
// io.ErrUnexpectedEOF; a read error is returned as is. Deadlines are the
// caller's, on r.
func ReadConnect(r io.Reader) (Connect, []byte, error) {
	buf := make([]byte, 0, 512)
	for {
		c, err := ParseConnect(buf)
		if !errors.Is(err, ErrIncomplete) {
			return c, buf, err
		}
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(2*cap(buf), MaxPacketSize+headerPeek))
			copy(grown, buf)
			buf = grown
		}
		n, rerr := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if rerr != nil && n == 0 {
			if rerr == io.EOF {
				rerr = io.ErrUnexpectedEOF
			}
			return Connect{}, buf, rerr
		}
	}
}
