// Package proxyproto reads and writes PROXY protocol headers, versions 1
// (text) and 2 (binary), as HAProxy's specification defines them. The
// reader is strict: a listener that expects the header refuses a connection
// without a valid one, as nginx's "listen ... proxy_protocol" does.
package proxyproto

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// Header is a parsed PROXY protocol header.
type Header struct {
	// Version is 1 or 2.
	Version int
	// Src and Dst are the original client and server endpoints. They are
	// zero when Local is set.
	Src, Dst netip.AddrPort
	// Local reports a header that carries no usable addresses: a v2 LOCAL
	// command (health checks from the proxy itself), a v1 UNKNOWN line, or
	// a v2 PROXY with an unspecified or unix family. The caller then uses
	// the connection's own addresses.
	Local bool
}

// Errors of ReadHeader. Malformed headers give an error wrapping
// ErrInvalid.
var (
	// ErrNoHeader means the stream does not start with a PROXY signature.
	ErrNoHeader = errors.New("proxyproto: no PROXY protocol header")
	// ErrInvalid is wrapped by every error about a malformed header.
	ErrInvalid = errors.New("proxyproto: invalid PROXY protocol header")
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Signatures and sizes from the specification.
var (
	v1Prefix = []byte("PROXY ")
	v2Sig    = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

const (
	// v1MaxLen is the longest v1 line, CRLF included.
	v1MaxLen = 107
	// v2HeaderLen is the fixed part of a v2 header.
	v2HeaderLen = 16
	// probeLen is read first to tell the versions apart; both headers are
	// at least this long ("PROXY UNKNOWN\r\n" is 15 bytes), so no byte
	// after the header is consumed.
	probeLen = 8
)

// ReadHeader reads one PROXY protocol header from r and nothing more: the
// bytes that follow it stay unread in r. If r is an io.ByteReader (a
// bufio.Reader, say) the v1 line is read through it; otherwise it is read
// one byte per Read call, at most 107, so r can be the bare connection.
// A v2 header is read in two exact reads (16 bytes, then its length).
// Set a read deadline on the connection first: ReadHeader waits for the
// whole header.
//
// A stream not starting with a signature gives ErrNoHeader; a broken header
// gives an error wrapping ErrInvalid; a short stream gives
// io.ErrUnexpectedEOF (io.EOF when it is empty).
func ReadHeader(r io.Reader) (Header, error) {
	var probe [v2HeaderLen]byte
	// read the probe as it comes, and give up as soon as the bytes so far
	// cannot begin a signature: a client without a header is refused at
	// once, not after the preread timeout
	for n := 0; n < probeLen; {
		m, err := r.Read(probe[n:probeLen])
		n += m
		if n > 0 && !couldBeHeader(probe[:n]) {
			return Header{}, ErrNoHeader
		}
		if err != nil && n < probeLen {
			if n > 0 {
				err = eof(err)
			}
			return Header{}, err
		}
	}
	switch {
	case bytes.Equal(probe[:probeLen], v2Sig[:probeLen]):
		if _, err := io.ReadFull(r, probe[probeLen:]); err != nil {
			return Header{}, eof(err)
		}
		return readV2(r, &probe)
	case bytes.HasPrefix(probe[:probeLen], v1Prefix):
		return readV1(r, probe[:probeLen])
	}
	return Header{}, ErrNoHeader
}

func couldBeHeader(b []byte) bool {
	sigPrefix := func(sig []byte) bool {
		k := min(len(b), len(sig))
		return bytes.Equal(b[:k], sig[:k])
	}
	return sigPrefix(v2Sig[:]) || sigPrefix(v1Prefix)
}

// eof turns an EOF after the header began into io.ErrUnexpectedEOF.
func eof(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
