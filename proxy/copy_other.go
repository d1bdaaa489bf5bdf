//go:build !linux || portable

package proxy

import "sync/atomic"

// rawCopier is Linux's raw read/write copy (copy_linux.go). Elsewhere
// there is none: initRaw finds no raw link and link.run takes the
// buffered copy, a read and a write through a pooled 32 KiB buffer per
// chunk.
type rawCopier struct{}

// initRaw finds no plain TCP to copy raw.
func (*link) initRaw(_, _ *atomic.Int64) bool { return false }

// run is never called: initRaw never finds a raw link. It exists so that
// link.run reads the same on every system.
func (*rawCopier) run() {}

// parker is empty: only raw directions park (park_linux.go).
type parker struct{}

// sweep has nothing to park.
func (*link) sweep() bool { return false }

// unpark only marks l aborted: nothing is ever parked here.
func (l *link) unpark() (woken [2]*rawCopier) {
	l.mu.Lock()
	l.aborted = true
	l.mu.Unlock()
	return woken
}

// calibrate has nothing to choose from: every connection takes the
// buffered copy.
func (rt *Runtime) calibrate() {}
