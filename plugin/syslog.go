package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/logformat"
	"github.com/caddy-apisix/stream/syslog"
)

// syslog (apisix/stream/plugins/syslog.lua, apisix/plugins/syslog/init.lua):
// in the log phase, one JSON entry per session built from log_format (the
// conf's, else plugin_metadata/syslog's), with route_id and service_id
// added, sent as RFC 5424 to a syslog server over TCP, UDP or TLS through
// APISIX's batch processor. Stream has no default format: without one it
// logs "syslog's log_format is not set" and sends nothing.
func init() {
	Register(Unit{
		Name:     "syslog",
		Priority: 401,
		Schema: `{"type":"object","properties":{` +
			`"host":{"type":"string"},` +
			`"port":{"type":"integer"},` +
			`"flush_limit":{"type":"integer","minimum":1,"default":4096},` +
			`"drop_limit":{"type":"integer","default":1048576},` +
			`"timeout":{"type":"integer","minimum":1,"default":3000},` +
			`"log_format":{"type":"object"},` +
			`"sock_type":{"type":"string","default":"tcp","enum":["tcp","udp"]},` +
			`"pool_size":{"type":"integer","minimum":5,"default":5},` +
			`"tls":{"type":"boolean","default":false},` +
			// apisix/utils/batch-processor.lua, name's default set by
			// batch-processor-manager.lua wrap_schema
			`"name":{"type":"string","default":"stream sys logger"},` +
			`"max_retry_count":{"type":"integer","minimum":0,"default":0},` +
			`"retry_delay":{"type":"integer","minimum":0,"default":1},` +
			`"buffer_duration":{"type":"integer","minimum":1,"default":60},` +
			`"inactive_timeout":{"type":"integer","minimum":1,"default":5},` +
			`"batch_max_size":{"type":"integer","minimum":1,"default":1000}},` +
			`"required":["host","port"]}`,
		// wrap_metadata_schema adds max_pending_entries
		MetadataSchema: `{"type":"object","properties":{` +
			`"log_format":{"type":"object"},` +
			`"max_pending_entries":{"type":"integer","minimum":1,"default":8192,` +
			`"description":"maximum number of entries waiting to be processed; new entries are discarded while the backlog exceeds it"}}}`,
		New: newSyslog,
	})
}

// syslogConf is the plugin's conf. Zero values take the client's
// defaults, which are the schema's; retry_delay is a pointer because 0 is
// a value of its own there.
type syslogConf struct {
	Host            string         `json:"host"`
	Port            int            `json:"port"`
	FlushLimit      int            `json:"flush_limit"`
	DropLimit       int            `json:"drop_limit"`
	Timeout         int            `json:"timeout"`
	LogFormat       map[string]any `json:"log_format"`
	SockType        string         `json:"sock_type"`
	TLS             bool           `json:"tls"`
	MaxRetryCount   int            `json:"max_retry_count"`
	RetryDelay      *int           `json:"retry_delay"`
	BufferDuration  int            `json:"buffer_duration"`
	InactiveTimeout int            `json:"inactive_timeout"`
	BatchMaxSize    int            `json:"batch_max_size"`
	Name            string         `json:"name"`
}

type syslogPlugin struct {
	key    string // the conf: one client per distinct conf
	cfg    syslog.Config
	format *logformat.Format // the conf's log_format, nil without one
	logger *zap.Logger
	shared *Shared
}

func newSyslog(raw json.RawMessage, env *Env) (any, error) {
	var conf syslogConf
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&conf); err != nil {
		return nil, err
	}
	if env.Shared == nil {
		return nil, errors.New("syslog: no shared plugin state in the environment")
	}
	p := &syslogPlugin{key: string(raw), logger: env.Logger, shared: env.Shared}
	if p.logger == nil {
		p.logger = zap.NewNop()
	}
	p.cfg = syslog.Config{
		Network:         conf.SockType,
		Host:            conf.Host,
		Port:            conf.Port,
		TLS:             conf.TLS,
		Timeout:         time.Duration(conf.Timeout) * time.Millisecond,
		FlushLimit:      conf.FlushLimit,
		DropLimit:       conf.DropLimit,
		BatchMaxSize:    conf.BatchMaxSize,
		InactiveTimeout: time.Duration(conf.InactiveTimeout) * time.Second,
		BufferDuration:  time.Duration(conf.BufferDuration) * time.Second,
		MaxRetryCount:   conf.MaxRetryCount,
		RetryDelay:      time.Second,
		Name:            conf.Name,
		Errorf: func(format string, args ...any) {
			p.logger.Sugar().Errorf("syslog: "+format, args...)
		},
	}
	if conf.RetryDelay != nil {
		// 0 is a valid retry_delay; the client's zero means its default
		p.cfg.RetryDelay = max(time.Duration(*conf.RetryDelay)*time.Second, time.Nanosecond)
	}
	if conf.LogFormat != nil {
		p.format = logformat.Compile(conf.LogFormat)
	}
	return p, nil
}

func (p *syslogPlugin) Log(s *Session, e *Entry) {
	format, maxPending := p.format, 0
	if meta := p.shared.syslogMetadata(); meta != nil {
		maxPending = meta.maxPending
		if format == nil {
			format = meta.format
		}
	}
	if format == nil {
		p.logger.Error("syslog's log_format is not set", zap.String("route", s.RouteID))
		return
	}
	entry := format.Build(func(name string) (string, bool) { return LogVar(s, e, name) })
	// log-util.lua get_custom_format_log
	if s.ServiceID != "" {
		entry["service_id"] = s.ServiceID
	}
	entry["route_id"] = s.RouteID
	c, err := p.shared.syslogClients.get(p.key, p.cfg)
	if err != nil {
		p.logger.Error("syslog: failed when initiating the sys logger processor", zap.Error(err))
		return
	}
	c.SetMaxPendingEntries(maxPending)
	if err := c.Log(entry); err != nil {
		p.logger.Error("syslog: "+err.Error(), zap.String("route", s.RouteID))
	}
}

// syslogMetadata is plugin_metadata/syslog compiled, kept while its JSON
// is unchanged.
type syslogMetadata struct {
	raw        json.RawMessage
	format     *logformat.Format // nil when log_format is absent or empty
	maxPending int
}

// syslogMetadata is the current plugin_metadata/syslog, nil without one.
func (sh *Shared) syslogMetadata() *syslogMetadata {
	raw := sh.Metadata("syslog")
	if raw == nil {
		return nil
	}
	if m := sh.syslogMeta.Load(); m != nil && bytes.Equal(m.raw, raw) {
		return m
	}
	var v struct {
		LogFormat         map[string]any `json:"log_format"`
		MaxPendingEntries int            `json:"max_pending_entries"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	_ = dec.Decode(&v) // validated by MetadataSchema when stored
	m := &syslogMetadata{raw: raw, maxPending: v.MaxPendingEntries}
	if len(v.LogFormat) > 0 {
		m.format = logformat.Compile(v.LogFormat)
	}
	sh.syslogMeta.Store(m)
	return m
}

// syslogIdle is the logger cache's TTL in syslog/init.lua (300 s).
const syslogIdle = 5 * time.Minute

// clientCache holds syslog's running clients (Shared.syslogClients), one
// per distinct conf, as APISIX keeps one batch processor per conf version
// and one logger per conf (batch-processor-manager.lua, the lrucache of
// syslog/init.lua). A client unused for syslogIdle is closed (it sends
// what it holds first); the next entry of its conf starts a new one.
type clientCache struct {
	mu       sync.Mutex
	m        map[string]*cachedClient
	sweeping bool
}

type cachedClient struct {
	c       *syslog.Client
	lastUse time.Time
}

func (cc *clientCache) get(key string, cfg syslog.Config) (*syslog.Client, error) {
	now := time.Now()
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if e, ok := cc.m[key]; ok {
		e.lastUse = now
		return e.c, nil
	}
	c, err := syslog.New(cfg)
	if err != nil {
		return nil, err
	}
	cc.m[key] = &cachedClient{c: c, lastUse: now}
	if !cc.sweeping {
		cc.sweeping = true
		time.AfterFunc(syslogIdle, cc.sweep)
	}
	return c, nil
}

// sweep closes the clients idle for syslogIdle, and runs again while any
// is left.
func (cc *clientCache) sweep() {
	now := time.Now()
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for key, e := range cc.m {
		if now.Sub(e.lastUse) >= syslogIdle {
			e.c.Close()
			delete(cc.m, key)
		}
	}
	if len(cc.m) > 0 {
		time.AfterFunc(syslogIdle, cc.sweep)
	} else {
		cc.sweeping = false
	}
}

// Interface guards
var _ LogPhaser = (*syslogPlugin)(nil)
