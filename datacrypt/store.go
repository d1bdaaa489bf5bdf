package datacrypt

import (
	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
	"github.com/caddy-apisix/stream/store"
)

// AtRest wraps a registry.Store so that private keys are encrypted in it
// and clear in the registry. An object whose keys do not decrypt with the
// keyring is skipped by Load, logged and counted in m (the gauges the
// inner store's Load sets; nil counts nowhere).
func AtRest(inner registry.Store, kr *Keyring, m *store.Metrics, logger *zap.Logger) registry.Store {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &atRest{inner: inner, kr: kr, metrics: m, logger: logger}
}

type atRest struct {
	inner   registry.Store
	kr      *Keyring
	metrics *store.Metrics
	logger  *zap.Logger
}

func (s *atRest) Load() ([]*registry.Object, int64, error) {
	objs, counter, err := s.inner.Load()
	if err != nil {
		return nil, 0, err
	}
	out := objs[:0]
	for _, o := range objs {
		v, err := s.kr.Open(o.Kind, o.Value)
		if err != nil {
			s.logger.Error("skipping stored object: its private key does not decrypt with the keyring",
				zap.String("kind", string(o.Kind)), zap.String("id", o.ID), zap.Error(err))
			s.metrics.AddUnreadable() // the inner store's Load reset it
			continue
		}
		o.Value = v
		out = append(out, o)
	}
	return out, counter, nil
}

func (s *atRest) Put(obj *registry.Object) error {
	v, err := s.kr.Seal(obj.Kind, obj.Value)
	if err != nil {
		return err
	}
	c := *obj
	c.Value = v
	return s.inner.Put(&c)
}

func (s *atRest) Delete(kind model.Kind, id string) error { return s.inner.Delete(kind, id) }

func (s *atRest) SaveCounter(n int64) error { return s.inner.SaveCounter(n) }

// Interface guards
var _ registry.Store = (*atRest)(nil)
