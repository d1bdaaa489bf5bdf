package store

import (
	"context"
	"path"
)

// ReadBlob returns the data stored under <prefix>/<name>; ok is false
// when there is none. Blobs hold whole documents (the API-driven
// standalone configuration), not registry objects: keep them under a
// prefix of their own.
func (s *Store) ReadBlob(name string) (data []byte, ok bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return s.read(ctx, path.Join(s.prefix, name))
}

// WriteBlob stores data under <prefix>/<name>, durably and atomically as
// Put does.
func (s *Store) WriteBlob(name string, data []byte) error {
	return s.write(path.Join(s.prefix, name), data)
}
