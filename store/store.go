// Package store is the embedded, crash-safe object store behind the
// registry when no etcd is configured. It keeps one JSON object per key in
// Caddy's storage (caddy.Context.Storage(), the file system by default):
//
//	<prefix>/<kind>/<escaped id>   one registry.Object, as a JSON envelope
//	<prefix>/gen_id                the POST id counter, decimal
//
// On a certmagic.FileStorage every write is a temporary file, fsync,
// rename and directory fsync, with mode 0600 since values may hold private
// keys. Other storages are used through their Store and Delete methods and
// are as durable as they are.
//
// Memory is an in-memory registry.Store with failure injection, for tests.
package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// staleTempAge is the age after which Load removes a temporary file: no
// write takes that long.
const staleTempAge = 10 * time.Minute

// opTimeout bounds one call to a non-file storage, so a hung backend
// fails the write (503) instead of holding the registry lock forever.
const opTimeout = time.Minute

// Store is a registry.Store on a certmagic.Storage. It is safe for
// concurrent use; writes are serialized. The zero value is not usable; use
// New.
type Store struct {
	storage certmagic.Storage
	// files is storage when it is a *certmagic.FileStorage, which Store
	// writes itself to make writes durable; nil otherwise.
	files   *certmagic.FileStorage
	prefix  string
	logger  *zap.Logger
	metrics *Metrics
	mu      sync.Mutex
}

var _ registry.Store = (*Store)(nil)

// New returns a store keeping its objects under prefix in storage. The
// prefix is cleaned to a relative slash path ("." and ".." segments cannot
// leave the storage root); empty means DefaultPrefix.
func New(storage certmagic.Storage, prefix string) *Store {
	s := &Store{storage: storage, prefix: cleanPrefix(prefix), logger: zap.NewNop()}
	s.files, _ = storage.(*certmagic.FileStorage)
	return s
}

// WithLogger makes Load log the entries it skips to l, and returns s.
// Without it they are only counted.
func (s *Store) WithLogger(l *zap.Logger) *Store {
	if l == nil {
		l = zap.NewNop()
	}
	s.logger = l
	return s
}

// WithMetrics sets the gauges Load updates (nil updates none) and returns
// s.
func (s *Store) WithMetrics(m *Metrics) *Store {
	s.metrics = m
	return s
}

// Prefix returns the cleaned key prefix.
func (s *Store) Prefix() string { return s.prefix }

// SkipError describes a stored entry that Load skipped: a file that does
// not parse, a temporary file left by an interrupted write, a key that
// does not match its content.
type SkipError struct {
	// Key is the storage key of the skipped entry.
	Key string
	// Err says why it was skipped.
	Err error
}

// Error implements error.
func (e *SkipError) Error() string { return e.Key + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *SkipError) Unwrap() error { return e.Err }

// errTemp marks temporary files left by an interrupted write.
var errTemp = errors.New("temporary file of an interrupted write")

// Load returns every stored object, sorted by kind and id, and the saved
// counter; failures of the storage itself are errors. Entries that cannot
// be read back whole are skipped, never deleted: each is logged at ERROR
// with its key, its file (on a FileStorage) and why, and counted in
// apisix_store_unreadable_objects (WithMetrics). Temporary files of interrupted writes are logged at
// INFO and not counted.
func (s *Store) Load() ([]*registry.Object, int64, error) {
	objs, counter, skipped, err := s.Scan()
	if err != nil {
		return objs, counter, err
	}
	unreadable := 0
	for _, sk := range skipped {
		fields := []zap.Field{zap.String("key", sk.Key)}
		if s.files != nil {
			fields = append(fields, zap.String("file", s.files.Filename(sk.Key)))
		}
		fields = append(fields, zap.Error(sk.Err))
		if errors.Is(sk.Err, errTemp) {
			s.logger.Info("skipping a temporary file", fields...)
			continue
		}
		unreadable++
		fields = append(fields, zap.String("action", "restore the file from a backup, or delete it and write the object again"))
		s.logger.Error("stored object unreadable: not served; the file is kept for inspection", fields...)
	}
	s.metrics.SetUnreadable(unreadable)
	return objs, counter, nil
}

// Scan is Load that returns the skipped entries instead of logging them.
// On a FileStorage it also removes temporary files older than ten minutes,
// left by writes that a crash interrupted.
func (s *Store) Scan() (objs []*registry.Object, counter int64, skipped []*SkipError, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	keys, err := s.storage.List(ctx, s.prefix, true)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil, nil
	}
	if err != nil {
		return nil, 0, nil, fmt.Errorf("listing %s: %w", s.prefix, err)
	}
	sort.Strings(keys)
	skip := func(key string, err error) { skipped = append(skipped, &SkipError{Key: key, Err: err}) }
	for _, key := range keys {
		key = filepath.ToSlash(key) // FileStorage.List joins OS paths
		rel, ok := strings.CutPrefix(key, s.prefix+"/")
		if !ok {
			skip(key, errors.New("outside the prefix"))
			continue
		}
		parts := strings.Split(rel, "/")
		if strings.HasPrefix(parts[len(parts)-1], tempPrefix) {
			s.removeStaleTemp(key)
			skip(key, errTemp)
			continue
		}
		switch {
		case len(parts) == 1 && parts[0] == counterName:
			data, ok, err := s.read(ctx, key)
			if err != nil {
				return nil, 0, nil, err
			}
			if !ok {
				continue
			}
			n, err := decodeCounter(data)
			if err != nil {
				skip(key, err)
				continue
			}
			counter = n
		case len(parts) == 1:
			// A kind's directory, as FileStorage lists them.
			if err := checkKind(model.Kind(parts[0])); err != nil {
				skip(key, err)
			} else if s.files != nil && !isDir(s.files.Filename(key)) {
				skip(key, errors.New("unexpected file"))
			}
		case len(parts) == 2:
			o, err := s.loadObject(ctx, key, model.Kind(parts[0]), parts[1])
			if err != nil {
				var sk *SkipError
				if errors.As(err, &sk) {
					skipped = append(skipped, sk)
					continue
				}
				return nil, 0, nil, err
			}
			if o != nil {
				objs = append(objs, o)
			}
		default:
			skip(key, errors.New("unexpected nesting"))
		}
	}
	sort.Slice(objs, func(i, j int) bool {
		if objs[i].Kind != objs[j].Kind {
			return objs[i].Kind < objs[j].Kind
		}
		return objs[i].ID < objs[j].ID
	})
	return objs, counter, skipped, nil
}

// loadObject reads and checks one object key. It returns a *SkipError for
// an entry that is not a whole object, nil and nil for a key gone
// meanwhile, and other errors for storage failures.
func (s *Store) loadObject(ctx context.Context, key string, kind model.Kind, name string) (*registry.Object, error) {
	if err := checkKind(kind); err != nil {
		return nil, &SkipError{Key: key, Err: err}
	}
	id, err := unescapeName(name)
	if err != nil {
		return nil, &SkipError{Key: key, Err: err}
	}
	if s.files != nil {
		if fi, err := os.Stat(s.files.Filename(key)); err == nil && !fi.Mode().IsRegular() {
			return nil, &SkipError{Key: key, Err: errors.New("not a regular file")}
		}
	}
	data, ok, err := s.read(ctx, key)
	if err != nil || !ok {
		return nil, err
	}
	o, err := decodeEnvelope(data)
	if err != nil {
		return nil, &SkipError{Key: key, Err: err}
	}
	if o.Kind != kind || o.ID != id {
		return nil, &SkipError{Key: key, Err: fmt.Errorf("holds %s/%s", o.Kind, o.ID)}
	}
	return o, nil
}

// removeStaleTemp deletes a temporary file of a FileStorage that is old
// enough to be left by a crash rather than in use by another process
// sharing the directory. It is cleanup only, so errors are ignored.
func (s *Store) removeStaleTemp(key string) {
	if s.files == nil {
		return
	}
	name := s.files.Filename(key)
	if fi, err := os.Lstat(name); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > staleTempAge {
		_ = os.Remove(name)
	}
}

// read loads key; ok is false if it disappeared since it was listed.
func (s *Store) read(ctx context.Context, key string) (data []byte, ok bool, err error) {
	data, err = s.storage.Load(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", key, err)
	}
	return data, true, nil
}

// Put stores obj under <prefix>/<kind>/<id>, durably and atomically.
func (s *Store) Put(obj *registry.Object) error {
	data, err := encodeEnvelope(obj)
	if err != nil {
		return err
	}
	key, err := objectKey(s.prefix, obj.Kind, obj.ID)
	if err != nil {
		return err
	}
	return s.write(key, data)
}

// Delete removes kind/id durably. Deleting a missing object is not an
// error.
func (s *Store) Delete(kind model.Kind, id string) error {
	key, err := objectKey(s.prefix, kind, id)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.files != nil {
		return removeFileDurable(s.files.Filename(key))
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return s.storage.Delete(ctx, key)
}

// SaveCounter stores the POST id counter under <prefix>/gen_id.
func (s *Store) SaveCounter(n int64) error {
	data, err := encodeCounter(n)
	if err != nil {
		return err
	}
	return s.write(path.Join(s.prefix, counterName), data)
}

// write stores data at key, durably on a FileStorage.
func (s *Store) write(key string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.files != nil {
		return writeFileDurable(s.files.Filename(key), data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return s.storage.Store(ctx, key, data)
}

// isDir reports whether name is a directory.
func isDir(name string) bool {
	fi, err := os.Stat(name)
	return err == nil && fi.IsDir()
}
