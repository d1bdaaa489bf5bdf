// Package plugin is the stream plugin framework: each plugin is one unit
// (name, APISIX priority, JSON schema, constructor) registered from an
// init function, and its instances take part in the phases of a session
// (apisix/stream/plugins/*.lua; apisix/init.lua stream_preread_phase and
// stream_log_phase): preread, which may read the client's first bytes and
// refuse the session; upstream choice; and log, once the session ended.
package plugin

import (
	"encoding/json"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/vars"
)

// Unit is one stream plugin.
type Unit struct {
	// Name is the plugin's name in confs ("limit-conn").
	Name string
	// Priority is APISIX's: higher runs first in every phase.
	Priority int
	// Schema is the plugin's JSON schema, as APISIX publishes it at
	// /apisix/admin/plugins/<name>. It also validates confs, with
	// `_meta` injected and api7 jsonschema's error texts.
	Schema string
	// MetadataSchema, when set, is the schema of plugin_metadata/<name>.
	MetadataSchema string
	// Check, when set, runs after the schema passed, on the conf with
	// defaults inserted, for checks a schema cannot express; its error
	// text follows "failed to check the configuration of stream plugin
	// [<name>]: ".
	Check func(conf map[string]any) error
	// New builds an instance for one route from a conf that passed
	// validation (the stored JSON, defaults not inserted). The instance
	// implements one or more of Prereader, UpstreamChooser and
	// LogPhaser. An instance is kept across changes elsewhere while the
	// route's conf is unchanged, so state such as limit-conn's counts
	// survives them.
	New func(conf json.RawMessage, env *Env) (any, error)
}

// Env is what a constructor may use besides its conf.
type Env struct {
	// RouteID and ServiceID name the route the instance serves and its
	// service ("" without one).
	RouteID, ServiceID string
	// Logger is the data path's logger.
	Logger *zap.Logger
	// Upstream returns the upstream object id, or nil when there is
	// none (sessions that choose it are then closed, as APISIX does).
	Upstream func(id string) Upstream
	// InlineUpstream compiles an inline upstream object (JSON that
	// passed the upstream schema) kept under key across snapshots while
	// raw is unchanged.
	InlineUpstream func(key string, raw json.RawMessage) (Upstream, error)
	// Shared is the data path's state shared by all instances (NewShared).
	Shared *Shared
}

// Upstream is a compiled upstream of the data path, opaque to plugins.
type Upstream interface{ StreamUpstream() }

// Prereader runs in the preread phase, after the route matched and
// before the upstream is chosen. A non-nil error ends the session without
// a byte to the upstream: an *Exit says with which status, any other
// error is status 503.
type Prereader interface {
	Preread(s *Session) error
}

// UpstreamChooser picks the session's upstream after every Prereader
// ran (traffic-split). nil keeps the route's upstream; the first chooser
// (by priority) that returns one wins. An error closes the session as a
// Prereader's does.
type UpstreamChooser interface {
	ChooseUpstream(s *Session) (Upstream, error)
}

// UpstreamReferrer is an UpstreamChooser that may pick upstream objects
// by id (traffic-split's upstream_id): the data path keeps the series of
// their nodes while the route may reach them.
type UpstreamReferrer interface {
	UpstreamIDs() []string
}

// LogPhaser runs once the session ended, for every session that matched
// a route, refused ones included.
type LogPhaser interface {
	Log(s *Session, e *Entry)
}

// Exit ends a session in preread with an APISIX status code
// (ngx.exit(code)): the session is closed, the code goes to the access
// log, the log phase and apisix_stream_status.
type Exit struct {
	Code int
}

func (e *Exit) Error() string { return fmt.Sprintf("session closed with status %d", e.Code) }

// Close is the error that ends a session with status code.
func Close(code int) error { return &Exit{Code: code} }

// Entry is what the log phase knows of an ended session.
type Entry struct {
	// Start is when the session was accepted; Duration how long it
	// lasted.
	Start    time.Time
	Duration time.Duration
	// Status is APISIX's stream status: 200 proxied, 502 no upstream
	// reached, 503 refused or without upstream, or a plugin's code.
	Status int
	// Upstream is the node's host:port, "" when none was reached.
	Upstream string
	// BytesReceived came from the client, BytesSent went to it
	// (nginx's $bytes_received and $bytes_sent).
	BytesReceived, BytesSent int64
}

// Lookup returns the unit name.
func Lookup(name string) (*Unit, bool) {
	u, ok := units[name]
	return u, ok
}

var units = map[string]*Unit{}

// Register adds a unit and its schema to validation and the Admin API.
// Call it from an init function; it panics on a bad schema or a duplicate.
func Register(u Unit) {
	if u.New == nil {
		panic("plugin " + u.Name + ": no constructor")
	}
	sp := model.StreamPlugin{Name: u.Name, Priority: u.Priority, Schema: model.MustCompileSchema(u.Schema), Check: u.Check}
	if u.MetadataSchema != "" {
		sp.MetadataSchema = model.MustCompileSchema(u.MetadataSchema)
	}
	model.RegisterStreamPlugin(sp)
	units[u.Name] = &u
}

// Disabled reports `_meta.disable: true` in a conf.
func Disabled(conf json.RawMessage) bool {
	var meta struct {
		Meta struct {
			Disable bool `json:"disable"`
		} `json:"_meta"`
	}
	_ = json.Unmarshal(conf, &meta)
	return meta.Meta.Disable
}

// Shared is what the plugins of one data path share across snapshots and
// sessions: the plugin_metadata objects of the current snapshot, and
// syslog's compiled metadata and running clients. The data-path runtime
// (proxy.Runtime, which package live owns) holds the process's one and
// hands it to every instance through Env.Shared. Create it with
// NewShared.
type Shared struct {
	metadata atomic.Pointer[map[string]json.RawMessage]
	// syslogMeta is plugin_metadata/syslog as last compiled.
	syslogMeta atomic.Pointer[syslogMetadata]
	// syslogClients are syslog's running clients.
	syslogClients *clientCache
}

// NewShared returns a Shared without metadata or clients.
func NewShared() *Shared {
	return &Shared{syslogClients: &clientCache{m: map[string]*cachedClient{}}}
}

// Metadata is the current plugin_metadata/<name> object (its JSON), nil
// when there is none. Read it per session or per batch: it changes at
// runtime.
func (sh *Shared) Metadata(name string) json.RawMessage {
	if m := sh.metadata.Load(); m != nil {
		return (*m)[name]
	}
	return nil
}

// SetMetadata publishes the plugin_metadata objects; the data path calls
// it on every change.
func (sh *Shared) SetMetadata(m map[string]json.RawMessage) { sh.metadata.Store(&m) }

// Session is what plugins see of one TCP connection or UDP session. Its
// variables (vars.Set: Get, Put, and the fields) are shared with the
// balancer's chash key and every other plugin.
type Session struct {
	vars.Set

	client   ClientReader
	datagram []byte
	captured []byte
	ends     []func()
}

// ClientReader is the client side as the data path hands it to a
// session's preread phase.
type ClientReader interface {
	Read(p []byte) (int, error)
	SetReadDeadline(t time.Time) error
}

// ReadTimeout bounds how long ReadClient waits for the client in all.
const ReadTimeout = 10 * time.Second

// BindClient is for the data path: r is the stream client (nil for UDP),
// datagram a UDP session's first datagram.
func (s *Session) BindClient(r ClientReader, datagram []byte) {
	s.client, s.datagram = r, datagram
}

// ReadClient reads client bytes in the preread phase (mqtt-proxy's
// CONNECT packet). Every byte read this way is sent to the upstream
// first, untouched. On a UDP session it reads from the first datagram
// (then io.EOF), which is forwarded anyway. The first call sets a read
// deadline ReadTimeout away.
func (s *Session) ReadClient(p []byte) (int, error) {
	if s.client == nil {
		if len(s.datagram) == 0 {
			return 0, io.EOF
		}
		n := copy(p, s.datagram)
		s.datagram = s.datagram[n:]
		return n, nil
	}
	if s.captured == nil {
		_ = s.client.SetReadDeadline(time.Now().Add(ReadTimeout))
		s.captured = make([]byte, 0, 256)
	}
	n, err := s.client.Read(p)
	s.captured = append(s.captured, p[:n]...)
	return n, err
}

// Captured is for the data path: the bytes ReadClient read, to send
// upstream before any other.
func (s *Session) Captured() []byte { return s.captured }

// OnEnd runs f when the session ends (after the log phase), whatever
// the outcome; hooks run last registered first.
func (s *Session) OnEnd(f func()) { s.ends = append(s.ends, f) }

// RunEnds is for the data path: it runs the OnEnd hooks once.
func (s *Session) RunEnds() {
	for i := len(s.ends) - 1; i >= 0; i-- {
		s.ends[i]()
	}
	s.ends = nil
}
