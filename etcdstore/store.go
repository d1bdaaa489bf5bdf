package etcdstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/caddy-apisix/stream/datacrypt"
	"github.com/caddy-apisix/stream/internal/ratewarn"
	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// Options configure a Store.
type Options struct {
	// Config is the checked etcd block.
	Config *Config
	// Keyring encrypts private keys on write and decrypts them on read.
	Keyring *datacrypt.Keyring
	// Check validates a value read from etcd and returns it as served
	// (with the schema defaults, which are applied when read, not stored);
	// a value it refuses is logged and skipped. Nil accepts every JSON
	// object as it is.
	Check func(kind model.Kind, value []byte) ([]byte, error)
	// Kinds are the directories served; nil means DefaultKinds.
	Kinds []model.Kind
	// ReadOnly is the data plane: the store never writes etcd.
	ReadOnly bool
	// OnPlugins, when set, is told the stream plugins <prefix>/plugins
	// enables (its "stream": true entries) each time the key is loaded or
	// written with a valid list. A data plane runs only those, as APISIX's
	// nodes without the Admin API do (apisix/plugin.lua
	// init_plugins_syncer, get_plugin_names); a deleted or invalid list
	// changes nothing. The store never writes the key.
	OnPlugins func(stream []string)
	// Metrics receives the reachable and modify-index gauges; nil
	// publishes none.
	Metrics *Metrics
	Logger  *zap.Logger
}

// probeInterval is how often the store checks that etcd is reachable and
// has not been restarted with less data (a smaller revision or another
// cluster id): the watch alone cannot tell.
const probeInterval = time.Second

// Store is a registry.Shared on etcd. Create it with New, attach it with
// registry.OpenShared.
type Store struct {
	opts    Options
	cfg     *Config
	layout  layout
	timeout time.Duration
	logger  *zap.Logger

	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	client *clientv3.Client
	status Status
	// lastErr is the latest etcd error, for writes while disconnected.
	lastErr error
	// down is set once a failure was logged, until etcd answers again
	// (logs.go); syncWarn rate-limits the failed-sync warnings
	down     bool
	syncWarn ratewarn.Limiter
	// manual is for benchmarks: Run does nothing, the caller loads.
	manual bool
}

// Status is one node's view of etcd.
type Status struct {
	// Connected is true while etcd answers.
	Connected bool `json:"connected"`
	// Revision is the etcd revision the served objects reflect.
	Revision int64 `json:"revision"`
	// ClusterID identifies the etcd cluster that revision belongs to.
	ClusterID uint64 `json:"cluster_id,omitempty"`
	// LastSync is when the objects were last confirmed current.
	LastSync time.Time `json:"last_sync,omitzero"`
	// LastError is the latest etcd error, if any.
	LastError string `json:"last_error,omitempty"`
	// Objects counts the served objects per kind.
	Objects map[string]int `json:"objects"`
	// MaxModifiedIndex is the highest modifiedIndex per kind.
	MaxModifiedIndex map[string]int64 `json:"max_modified_index"`
	// Reloads counts full reloads (start, compaction, etcd restart).
	Reloads int64 `json:"reloads"`
}

var _ registry.Shared = (*Store)(nil)

// New returns a store; it connects in Run.
func New(opts Options) (*Store, error) {
	if opts.Config == nil {
		return nil, errors.New("etcd: no config")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Kinds == nil {
		opts.Kinds = DefaultKinds
	}
	if opts.Keyring == nil {
		opts.Keyring = &datacrypt.Keyring{}
	}
	s := &Store{
		opts: opts, cfg: opts.Config, logger: opts.Logger,
		layout:  newLayout(opts.Config.Prefix, opts.Kinds),
		timeout: time.Duration(opts.Config.Timeout),
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.lastErr = errors.New("etcd is not connected yet")
	return s, nil
}

// Status returns the node's current view.
func (s *Store) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.Objects = copyMap(st.Objects)
	st.MaxModifiedIndex = copyMap(st.MaxModifiedIndex)
	return st
}

func copyMap[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// errReadOnly refuses writes from a data plane.
var errReadOnly = errors.New("this node is a data_plane: it never writes etcd")

// persistError is an etcd failure as the Admin API shows it: the etcd
// error itself, answered with 503.
type persistError struct{ err error }

func (e *persistError) Error() string { return e.err.Error() }
func (e *persistError) Unwrap() []error {
	return []error{registry.ErrPersist, e.err}
}

// conn returns the client, or the reason there is none.
func (s *Store) conn() (*clientv3.Client, error) {
	if s.opts.ReadOnly {
		return nil, &persistError{errReadOnly}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil || !s.status.Connected {
		return nil, &persistError{s.lastErr}
	}
	return s.client, nil
}

// Commit implements registry.Shared: one put (with a compare-and-swap on
// mod_revision for IfModified, a lease for TTL) or delete, acknowledged
// when etcd committed it (apisix/core/etcd.lua set, atomic_set, delete).
func (s *Store) Commit(c registry.Change) (int64, error) {
	cli, err := s.conn()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	key := s.layout.key(c.Kind, c.ID)
	if c.Value == nil {
		resp, err := cli.Delete(ctx, key)
		if err != nil {
			return 0, s.fail(err)
		}
		return resp.Header.Revision, nil
	}
	val, err := s.opts.Keyring.Seal(c.Kind, c.Value)
	if err != nil {
		return 0, err
	}
	var opts []clientv3.OpOption
	if c.TTL > 0 {
		lease, err := cli.Grant(ctx, c.TTL)
		if err != nil {
			return 0, s.fail(err)
		}
		opts = append(opts, clientv3.WithLease(lease.ID))
	}
	put := clientv3.OpPut(key, string(val), opts...)
	if c.IfModified != 0 {
		resp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", c.IfModified)).Then(put).Commit()
		if err != nil {
			return 0, s.fail(err)
		}
		if !resp.Succeeded {
			return 0, registry.ErrChanged
		}
		return resp.Header.Revision, nil
	}
	resp, err := cli.Do(ctx, put)
	if err != nil {
		return 0, s.fail(err)
	}
	return resp.Put().Header.Revision, nil
}

// GenID implements registry.Shared: a put of <prefix>/gen_id whose
// response revision is the id (apisix/core/etcd.lua push).
func (s *Store) GenID() (int64, error) {
	cli, err := s.conn()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	resp, err := cli.Put(ctx, s.cfg.Prefix+"/gen_id", "1")
	if err != nil {
		return 0, s.fail(err)
	}
	return resp.Header.Revision, nil
}

// fail records err as the latest etcd error and wraps it.
func (s *Store) fail(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("etcd request timed out after %s: %w", s.timeout, err)
	}
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
	return &persistError{err}
}

// Close implements registry.Shared. It does not wait for Run, which may be
// blocked on the registry's lock.
func (s *Store) Close() { s.cancel() }

// Run implements registry.Shared.
func (s *Store) Run(r *registry.Registry) {
	if s.manual {
		return
	}
	go s.run(r)
}

func (s *Store) run(r *registry.Registry) {
	defer func() {
		s.mu.Lock()
		cli := s.client
		s.client = nil
		s.status.Connected = false
		s.mu.Unlock()
		if cli != nil {
			_ = cli.Close()
		}
	}()
	backoff := time.Duration(0)
	for s.ctx.Err() == nil {
		if backoff > 0 {
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(backoff + rand.N(backoff/2+1)):
			}
		}
		err := s.session(r)
		if s.ctx.Err() != nil {
			return
		}
		s.setDisconnected(err)
		s.warnSyncFailed(err)
		backoff = min(max(2*backoff, 500*time.Millisecond), 8*time.Second)
	}
}

// errResync ends a session that needs a full reload.
var errResync = errors.New("full reload needed")

// session connects if needed, loads everything and watches until an error.
func (s *Store) session(r *registry.Registry) error {
	cli, err := s.connect()
	if err != nil {
		return err
	}
	if !s.opts.ReadOnly {
		s.initDirs(cli)
	}
	for {
		rev, cluster, err := s.load(r, cli)
		if err != nil {
			return err
		}
		err = s.watch(r, cli, rev, cluster)
		if !errors.Is(err, errResync) {
			return err
		}
	}
}

func (s *Store) connect() (*clientv3.Client, error) {
	s.mu.Lock()
	cli := s.client
	s.mu.Unlock()
	if cli != nil {
		return cli, nil
	}
	cfg := clientv3.Config{
		Endpoints:            s.cfg.Host,
		DialTimeout:          s.timeout,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		Username:             s.cfg.User,
		Password:             s.cfg.Password,
		Logger:               s.logger.Named("client").WithOptions(zap.IncreaseLevel(zap.ErrorLevel)),
		Context:              s.ctx,
	}
	if s.cfg.TLS != nil {
		t, err := s.cfg.TLS.Config()
		if err != nil {
			return nil, err
		}
		cfg.TLS = t
		// clientv3's own credentials verify the endpoint's host and
		// ignore ServerName; grpc's honour it (etcd.tls.sni)
		cfg.DialOptions = []grpc.DialOption{grpc.WithTransportCredentials(newCreds(t))}
	} else if strings.HasPrefix(s.cfg.Host[0], "https://") {
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.client = cli
	s.mu.Unlock()
	return cli, nil
}

// initDirs writes the directory placeholders that are missing, as apisix
// init does; failures are only logged (readers tolerate their absence).
func (s *Store) initDirs(cli *clientv3.Client) {
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	for _, d := range initDirs {
		key := s.cfg.Prefix + d + "/"
		_, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, initDirValue)).Commit()
		if err != nil {
			s.logger.Warn("writing etcd directory placeholder", zap.String("key", key), zap.Error(err))
			return
		}
	}
}

// load reads the whole prefix and hands it to the registry.
func (s *Store) load(r *registry.Registry, cli *clientv3.Client) (int64, uint64, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	resp, err := cli.Get(ctx, s.cfg.Prefix+"/", clientv3.WithPrefix())
	if err != nil {
		return 0, 0, err
	}
	// objects held at the same mod_revision are not decoded again: the
	// registry keeps them as they are
	held := map[string]int64{}
	r.View(func(v registry.View) {
		for _, k := range s.opts.Kinds {
			for _, o := range v.List(k) {
				if !o.Static {
					held[s.layout.key(k, o.ID)] = o.ModifiedIndex
				}
			}
		}
	})
	evs := make([]registry.Event, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		s.pluginList(string(kv.Key), kv.Value)
		if mod, ok := held[string(kv.Key)]; ok && mod == kv.ModRevision {
			kind, id, _ := s.layout.parse(string(kv.Key))
			evs = append(evs, registry.Event{Kind: kind, ID: id, CreatedIndex: kv.CreateRevision, ModifiedIndex: mod})
			continue
		}
		if e, ok := s.decode(string(kv.Key), kv.Value, kv.CreateRevision, kv.ModRevision); ok {
			evs = append(evs, e)
		}
	}
	rev := resp.Header.Revision
	r.Reload(s, evs, rev)
	s.synced(r, rev, resp.Header.ClusterId, true)
	return rev, resp.Header.ClusterId, nil
}

// pluginList hands the stream plugins of <prefix>/plugins to OnPlugins.
// The value is APISIX's list, e.g. [{"name":"jwt-auth"},{"name":
// "mqtt-proxy","stream":true}] (core.schema.plugins).
func (s *Store) pluginList(key string, value []byte) {
	if s.opts.OnPlugins == nil || key != s.cfg.Prefix+"/plugins" {
		return
	}
	var list []struct {
		Name   string `json:"name"`
		Stream bool   `json:"stream"`
	}
	if err := json.Unmarshal(value, &list); err != nil {
		s.logger.Error("ignoring an invalid plugin list; the enabled stream plugins stay",
			zap.String("key", key), zap.Error(err))
		return
	}
	stream := []string{}
	for _, p := range list {
		if p.Stream && p.Name != "" {
			stream = append(stream, p.Name)
		}
	}
	s.opts.OnPlugins(stream)
}

// decode turns one kv into an object event; values that are not served
// or not valid are logged and dropped.
func (s *Store) decode(key string, value []byte, created, modified int64) (registry.Event, bool) {
	kind, id, ok := s.layout.parse(key)
	if !ok {
		return registry.Event{}, false
	}
	e := registry.Event{Kind: kind, ID: id, CreatedIndex: created, ModifiedIndex: modified}
	if value == nil {
		return e, true
	}
	v, err := withID(value, id)
	if err == nil {
		v, err = s.opts.Keyring.Open(kind, v)
	}
	stored := v
	if err == nil && s.opts.Check != nil {
		v, err = s.opts.Check(kind, v)
	}
	if err != nil {
		s.logger.Error("skipping invalid etcd item; the last valid version stays",
			zap.String("key", key), zap.Int64("mod_revision", modified), zap.Error(err),
			zap.String("action", "fix the value with the Admin API or etcdctl, or delete the key"))
		return registry.Event{}, false
	}
	e.Value = v
	if !bytes.Equal(stored, v) {
		e.Stored = stored // the Admin API shows it as etcd holds it
	}
	return e, true
}

// watch follows the prefix from rev+1 until an error; errResync asks for a
// full reload (compaction, or etcd restarted with less data).
func (s *Store) watch(r *registry.Registry, cli *clientv3.Client, rev int64, cluster uint64) error {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(s.ctx))
	defer cancel()
	wch := cli.Watch(ctx, s.cfg.Prefix+"/", clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithPrevKV())
	probe := time.NewTicker(probeInterval)
	defer probe.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return s.ctx.Err()
		case <-probe.C:
			if err := s.probe(r, cli, rev, cluster); err != nil {
				return err
			}
		case wresp, ok := <-wch:
			if !ok {
				return errors.New("etcd watch closed")
			}
			if wresp.CompactRevision != 0 {
				s.logger.Warn("etcd compacted past the watched revision; reloading",
					zap.Int64("revision", rev), zap.Int64("compact_revision", wresp.CompactRevision))
				return errResync
			}
			if err := wresp.Err(); err != nil {
				return err
			}
			if wresp.Header.Revision < rev || (cluster != 0 && wresp.Header.ClusterId != cluster) {
				return errResync
			}
			evs := make([]registry.Event, 0, len(wresp.Events))
			for _, ev := range wresp.Events {
				var e registry.Event
				var ok bool
				if ev.Type == clientv3.EventTypeDelete {
					e, ok = s.decode(string(ev.Kv.Key), nil, 0, ev.Kv.ModRevision)
				} else {
					s.pluginList(string(ev.Kv.Key), ev.Kv.Value)
					e, ok = s.decode(string(ev.Kv.Key), ev.Kv.Value, ev.Kv.CreateRevision, ev.Kv.ModRevision)
				}
				if ok {
					evs = append(evs, e)
				}
			}
			rev = max(rev, wresp.Header.Revision)
			keys, before := s.held(r, evs)
			r.Apply(s, evs, rev)
			s.applied(r, keys, before, rev, cluster)
		}
	}
}

// probe checks that etcd answers and still holds our revision.
func (s *Store) probe(r *registry.Registry, cli *clientv3.Client, rev int64, cluster uint64) error {
	ctx, cancel := context.WithTimeout(s.ctx, min(s.timeout, 3*time.Second))
	defer cancel()
	resp, err := cli.Get(ctx, s.cfg.Prefix, clientv3.WithCountOnly())
	if err != nil {
		s.setDisconnected(err)
		s.mu.Lock()
		s.warnLost(err)
		s.mu.Unlock()
		return nil // the watch reconnects by itself; keep serving
	}
	if resp.Header.Revision < rev || resp.Header.ClusterId != cluster {
		s.logger.Warn("etcd restarted with other data (smaller revision or new cluster); reloading",
			zap.Int64("revision", rev), zap.Int64("etcd_revision", resp.Header.Revision))
		return errResync
	}
	s.mu.Lock()
	s.status.Connected = true
	s.status.LastError = ""
	s.opts.Metrics.observe(s.status)
	s.upAgain(rev)
	s.mu.Unlock()
	return nil
}

func (s *Store) setDisconnected(err error) {
	if err == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("etcd request timed out after %s: %w", min(s.timeout, 3*time.Second), err)
	}
	s.status.Connected = false
	s.status.LastError = err.Error()
	s.lastErr = err
	s.opts.Metrics.observe(s.status)
}

// objKey is one object's kind and id.
type objKey struct {
	kind model.Kind
	id   string
}

// heldMod is the modifiedIndex of o when it is a served etcd object (not
// a static one), else -1.
func heldMod(o *registry.Object) int64 {
	if o == nil || o.Static {
		return -1
	}
	return o.ModifiedIndex
}

// held returns the distinct objects evs touch, of the kinds counted, and
// heldMod of each before they apply.
func (s *Store) held(r *registry.Registry, evs []registry.Event) ([]objKey, []int64) {
	keys := make([]objKey, 0, len(evs))
	for _, e := range evs {
		k := objKey{e.Kind, e.ID}
		if slices.Contains(s.opts.Kinds, e.Kind) && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	before := make([]int64, len(keys))
	r.View(func(v registry.View) {
		for i, k := range keys {
			before[i] = heldMod(v.Get(k.kind, k.id))
		}
	})
	return keys, before
}

// applied records a watch event's sync: the counts change by the objects
// it touched (keys, held before at before), not by a recount of every
// object. A kind is recounted only when the object that held its
// highest modifiedIndex left or went below it.
func (s *Store) applied(r *registry.Registry, keys []objKey, before []int64, rev int64, cluster uint64) {
	s.mu.Lock()
	objects := copyMap(s.status.Objects)
	maxMod := copyMap(s.status.MaxModifiedIndex)
	s.mu.Unlock()
	var recount []model.Kind
	r.View(func(v registry.View) {
		for i, k := range keys {
			kind, after := string(k.kind), heldMod(v.Get(k.kind, k.id))
			if before[i] >= 0 {
				objects[kind]--
			}
			if after >= 0 {
				objects[kind]++
				maxMod[kind] = max(maxMod[kind], after)
			}
			if before[i] >= 0 && before[i] == maxMod[kind] && after < before[i] && !slices.Contains(recount, k.kind) {
				recount = append(recount, k.kind)
			}
		}
		for _, k := range recount {
			m := int64(0)
			for _, o := range v.List(k) {
				if !o.Static {
					m = max(m, o.ModifiedIndex)
				}
			}
			if maxMod[string(k)] = m; m == 0 {
				delete(maxMod, string(k)) // as a recount leaves it
			}
		}
	})
	s.record(rev, cluster, objects, maxMod, false)
}

// synced records a sync and recounts the objects.
func (s *Store) synced(r *registry.Registry, rev int64, cluster uint64, full bool) {
	objects := map[string]int{}
	maxMod := map[string]int64{}
	r.View(func(v registry.View) {
		for _, k := range s.opts.Kinds {
			n := 0
			for _, o := range v.List(k) {
				if !o.Static {
					n++
					maxMod[string(k)] = max(maxMod[string(k)], o.ModifiedIndex)
				}
			}
			objects[string(k)] = n
		}
	})
	s.record(rev, cluster, objects, maxMod, full)
}

// record publishes a sync's revision and counts.
func (s *Store) record(rev int64, cluster uint64, objects map[string]int, maxMod map[string]int64, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.upAgain(rev)
	s.status.Connected = true
	s.status.LastError = ""
	s.status.Revision = rev
	s.status.ClusterID = cluster
	s.status.LastSync = time.Now()
	s.status.Objects = objects
	s.status.MaxModifiedIndex = maxMod
	if full {
		s.status.Reloads++
	}
	s.opts.Metrics.observe(s.status)
}
