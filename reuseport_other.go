//go:build !unix

package stream

import "syscall"

// reusePort does nothing where SO_REUSEPORT does not exist (Windows): a
// reload that keeps a stream listener's address may then fail to bind it
// while the old config still holds it (README "Platforms").
func reusePort(_, _ string, _ syscall.RawConn) error { return nil }
