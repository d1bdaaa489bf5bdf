//go:build !linux || portable

package proxy

import (
	"net"
	"sync/atomic"
)

// rawCopier is Linux's raw read/write copy (copy_linux.go). Elsewhere
// there is none: newRawCopier returns nil and link.run takes the buffered
// copy, a read and a write through a pooled 32 KiB buffer per chunk.
type rawCopier struct{}

func newRawCopier(net.Conn, net.Conn, *link, *atomic.Int64) *rawCopier { return nil }

// initRaw finds no plain TCP to copy raw.
func (*link) initRaw(_, _ *atomic.Int64) bool { return false }

// copy and closeWrite are never called: newRawCopier never returns a
// copier. They exist so that link.run reads the same on every system.
func (*rawCopier) copy() error       { return errNoRawCopy }
func (*rawCopier) closeWrite() error { return errNoRawCopy }

// calibrate has nothing to choose from: every connection takes the
// buffered copy.
func (rt *Runtime) calibrate() {}
