package plugin

import (
	"encoding/json"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/vars"
)

// limit-conn (apisix/stream/plugins/limit-conn.lua, the shared
// apisix/plugins/limit-conn/init.lua): concurrent sessions per key. Above
// conn, up to conn+burst, a session is delayed by default_conn_delay ×
// floor((n-1)/conn) (only default_conn_delay with only_use_default_delay);
// above conn+burst it is closed with status 503. The key is one variable
// (key_type var) or a "$var" template (var_combination); an empty value
// falls back to $remote_addr. Counts are per route and conf version.
func init() {
	Register(Unit{
		Name:     "limit-conn",
		Priority: 1003,
		Schema: `{"type":"object","properties":{` +
			`"conn":{"type":"integer","exclusiveMinimum":0},` +
			`"burst":{"type":"integer","minimum":0},` +
			`"default_conn_delay":{"type":"number","exclusiveMinimum":0},` +
			`"only_use_default_delay":{"type":"boolean","default":false},` +
			`"key":{"type":"string"},` +
			`"key_type":{"type":"string","enum":["var","var_combination"],"default":"var"},` +
			`"rejected_code":{"type":"integer","minimum":200,"maximum":599,"default":503},` +
			`"rejected_msg":{"type":"string","minLength":1},` +
			`"allow_degradation":{"type":"boolean","default":false}},` +
			`"required":["conn","burst","default_conn_delay","key"]}`,
		New: newLimitConn,
	})
}

type limitConn struct {
	conn, burst int
	delay       time.Duration
	onlyDefault bool
	key         vars.Template
	code        int
	logger      *zap.Logger

	mu     sync.Mutex
	active map[string]int
}

func newLimitConn(raw json.RawMessage, env *Env) (any, error) {
	var conf struct {
		Conn                int     `json:"conn"`
		Burst               int     `json:"burst"`
		DefaultConnDelay    float64 `json:"default_conn_delay"`
		Key                 string  `json:"key"`
		KeyType             string  `json:"key_type"`
		OnlyUseDefaultDelay bool    `json:"only_use_default_delay"`
		RejectedCode        int     `json:"rejected_code"`
	}
	if err := json.Unmarshal(raw, &conf); err != nil {
		return nil, err
	}
	p := &limitConn{
		conn: max(conf.Conn, 1), burst: conf.Burst, delay: time.Duration(conf.DefaultConnDelay * float64(time.Second)),
		onlyDefault: conf.OnlyUseDefaultDelay, code: conf.RejectedCode, logger: env.Logger, active: map[string]int{},
	}
	if p.code == 0 {
		p.code = 503
	}
	if p.logger == nil {
		p.logger = zap.NewNop()
	}
	if conf.KeyType == "var_combination" {
		p.key = vars.ParseTemplate(conf.Key)
	} else {
		p.key = vars.Single(conf.Key)
	}
	return p, nil
}

var remoteAddr = vars.Single("remote_addr")

func (p *limitConn) Preread(s *Session) error {
	key := p.key.Render(&s.Set)
	if key == "" {
		p.logger.Warn("The value of the configured key is empty, use client IP instead", zap.String("route", s.RouteID))
		key = remoteAddr.Render(&s.Set)
	}
	p.mu.Lock()
	n := p.active[key] + 1
	if n > p.conn+p.burst {
		p.mu.Unlock()
		return Close(p.code)
	}
	p.active[key] = n
	p.mu.Unlock()
	s.OnEnd(func() {
		p.mu.Lock()
		if p.active[key] <= 1 {
			delete(p.active, key)
		} else {
			p.active[key]--
		}
		p.mu.Unlock()
	})
	if n > p.conn {
		d := p.delay
		if !p.onlyDefault {
			d = p.delay * time.Duration((n-1)/p.conn)
		}
		time.Sleep(d)
	}
	return nil
}

// Interface guards
var _ Prereader = (*limitConn)(nil)
