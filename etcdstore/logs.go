package etcdstore

import (
	"errors"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
)

// How the store tells an operator about etcd problems
// (docs/modules/apisix.md#logs): a failed sync (connect, authenticate,
// load or watch) warns at most once per ratewarn.Every with the hosts,
// the error, what to check (action) and the failures since the last
// warning; a connection that stops answering warns once; the first sync
// or probe that succeeds after either logs "etcd reachable again". An
// item that cannot be read is an ERROR with its key (Store.decode).

// warnSyncFailed warns, rate-limited, that a sync session ended on err.
func (s *Store) warnSyncFailed(err error) {
	s.mu.Lock()
	s.down = true
	s.mu.Unlock()
	n, ok := s.syncWarn.Allow(time.Now())
	if !ok {
		return
	}
	s.logger.Warn("etcd sync failed; retrying, traffic keeps the last loaded configuration",
		zap.Strings("etcd_host", s.cfg.Host), zap.String("prefix", s.cfg.Prefix), zap.Error(err),
		zap.String("action", action(err)), zap.Int64("failures_since_last_warning", n))
}

// warnLost warns that etcd stopped answering the probe of a watch that
// was up; the caller holds s.mu.
func (s *Store) warnLost(err error) {
	if s.down {
		return
	}
	s.down = true
	s.logger.Warn("etcd connection lost; traffic keeps the last loaded configuration, writes answer 503",
		zap.Strings("etcd_host", s.cfg.Host), zap.Error(err), zap.String("action", action(err)))
}

// upAgain logs that etcd answers again after a warning; the caller
// holds s.mu.
func (s *Store) upAgain(rev int64) {
	if !s.down {
		return
	}
	s.down = false
	s.logger.Info("etcd reachable again", zap.Strings("etcd_host", s.cfg.Host), zap.Int64("revision", rev))
}

// action is what an operator should check for an etcd error.
func action(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, rpctypes.ErrAuthFailed) || strings.Contains(msg, rpctypes.ErrGRPCAuthFailed.Error()):
		return "check etcd.user and etcd.password"
	case errors.Is(err, rpctypes.ErrPermissionDenied) || strings.Contains(msg, rpctypes.ErrGRPCPermissionDenied.Error()):
		return "grant the etcd user read and write on the prefix (a role with a prefix permission)"
	case errors.Is(err, rpctypes.ErrAuthNotEnabled) || strings.Contains(msg, rpctypes.ErrGRPCAuthNotEnabled.Error()):
		return "enable authentication in etcd, or remove etcd.user and etcd.password"
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:"):
		return "check etcd.tls (ca, cert, key, sni) against the certificates of etcd"
	default:
		return "check that etcd runs at etcd.host and that this node reaches it"
	}
}
