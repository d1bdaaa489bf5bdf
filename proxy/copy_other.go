//go:build !linux || portable

package proxy

import (
	"net"
	"sync/atomic"
)

// splicer is Linux's splice(2) copy (splice.go). Elsewhere there is none:
// newSplicer returns nil and link.run takes the buffered copy, a read and
// a write through a pooled 32 KiB buffer per chunk.
type splicer struct{}

func newSplicer(net.Conn, net.Conn, *link, *atomic.Int64) *splicer { return nil }

// copy and closeWrite are never called: newSplicer never returns a
// splicer. They exist so that link.run reads the same on every system.
func (*splicer) copy() error       { return errNoSplice }
func (*splicer) closeWrite() error { return errNoSplice }
