package standalone

import (
	"crypto/sha256"
	"errors"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/registry"
)

// DefaultInterval is how often a Watcher looks at its file, as APISIX
// re-reads apisix.yaml once a second (apisix/core/config_yaml.lua).
const DefaultInterval = time.Second

// Watcher is the file-driven standalone mode: it publishes the document at
// Path and publishes it again each time the file changes. A document that
// fails to read, parse or validate is logged, each error naming its
// object, and the last good one keeps serving.
type Watcher struct {
	// Path is the document; Format how it is written.
	Path   string
	Format Format
	// Registry receives the objects.
	Registry *registry.Registry
	// Logger receives reloads and rejected documents; nil logs nothing.
	Logger *zap.Logger
	// Interval between looks at the file; 0 is DefaultInterval.
	Interval time.Duration
	// Lookup resolves ${{VAR}}; nil is os.LookupEnv.
	Lookup func(string) (string, bool)

	mu      sync.Mutex
	stop    chan struct{}
	done    chan struct{}
	seen    fileStamp
	hash    [sha256.Size]byte
	hasHash bool
}

// fileStamp is what a look at the file compares before reading it.
type fileStamp struct {
	mod  time.Time
	size int64
	ok   bool
}

// Start loads the file once, synchronously, then watches it until Stop.
// It returns the first load's error (also logged); the watcher runs
// anyway, so fixing the file takes effect.
func (w *Watcher) Start() error {
	w.mu.Lock()
	// read again: another document may have been published meanwhile
	w.seen, w.hasHash = fileStamp{}, false
	w.mu.Unlock()
	err := w.Reload()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stop != nil {
		return err
	}
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	interval := w.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	go w.loop(interval, w.stop, w.done)
	return err
}

// Stop ends the watch and waits for it; the published objects stay.
func (w *Watcher) Stop() {
	w.mu.Lock()
	stop, done := w.stop, w.done
	w.stop, w.done = nil, nil
	w.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

func (w *Watcher) loop(interval time.Duration, stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			_ = w.Reload()
		}
	}
}

// Reload looks at the file and publishes it if it changed since the last
// look. It returns the error of a document that was not published.
func (w *Watcher) Reload() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := stamp(w.Path)
	if st == w.seen && st.ok {
		return nil
	}
	data, err := os.ReadFile(w.Path)
	if err != nil {
		if w.seen.ok || !w.hasHash {
			w.log().Error("failed to read the standalone config file; the last good one keeps serving",
				zap.String("file", w.Path), zap.Error(err))
		}
		w.seen = fileStamp{}
		return err
	}
	w.seen = st
	sum := sha256.Sum256(data)
	if w.hasHash && sum == w.hash {
		return nil
	}
	w.hash, w.hasHash = sum, true
	return w.apply(data)
}

func (w *Watcher) apply(data []byte) error {
	lookup := w.Lookup
	if lookup == nil {
		lookup = os.LookupEnv
	}
	doc, err := Parse(data, w.Format, lookup)
	if err != nil {
		w.log().Error("failed to parse the standalone config file; the last good one keeps serving",
			zap.String("file", w.Path), zap.Error(err))
		return err
	}
	checked, errs := Check(doc)
	if len(errs) > 0 {
		for _, e := range errs {
			w.log().Error("invalid object in the standalone config file; the last good one keeps serving",
				zap.String("file", w.Path), zap.String("error", e.Message()))
		}
		return errors.New(errs[0].Message())
	}
	if err := Publish(w.Registry, checked); err != nil {
		w.log().Error("standalone config file refused; the last good one keeps serving",
			zap.String("file", w.Path), zap.Error(err))
		return err
	}
	w.log().Info("standalone config file loaded", zap.String("file", w.Path), zap.Int("objects", len(checked.Objects)))
	return nil
}

func (w *Watcher) log() *zap.Logger {
	if w.Logger == nil {
		return zap.NewNop()
	}
	return w.Logger
}

func stamp(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size(), ok: true}
}
