package plugin

import (
	"encoding/json"

	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/mqtt"
)

// mqtt-proxy (apisix/stream/plugins/mqtt-proxy.lua): the session must
// open with an MQTT CONNECT packet of the configured protocol name and
// level, or it is closed without a byte to the upstream. A non-empty
// client id becomes $mqtt_client_id, which a chash upstream with `key:
// mqtt_client_id` balances on; an empty one leaves it unset and chash
// falls back to the client address. The packet goes to the upstream
// untouched.
func init() {
	Register(Unit{
		Name:     "mqtt-proxy",
		Priority: 1000,
		Schema: `{"type":"object","properties":{` +
			`"protocol_name":{"type":"string","default":"MQTT"},` +
			`"protocol_level":{"type":"integer"}},` +
			`"required":["protocol_level"]}`,
		New: newMQTTProxy,
	})
}

type mqttProxy struct {
	name   string
	level  int
	logger *zap.Logger
}

func newMQTTProxy(raw json.RawMessage, env *Env) (any, error) {
	var conf struct {
		ProtocolName  *string `json:"protocol_name"`
		ProtocolLevel int     `json:"protocol_level"`
	}
	if err := json.Unmarshal(raw, &conf); err != nil {
		return nil, err
	}
	p := &mqttProxy{name: "MQTT", level: conf.ProtocolLevel, logger: env.Logger}
	if conf.ProtocolName != nil {
		p.name = *conf.ProtocolName
	}
	if p.logger == nil {
		p.logger = zap.NewNop()
	}
	return p, nil
}

// clientReader reads the session's client through ReadClient, so every
// byte read goes to the upstream.
type clientReader struct{ s *Session }

func (r clientReader) Read(p []byte) (int, error) { return r.s.ReadClient(p) }

func (p *mqttProxy) Preread(s *Session) error {
	c, _, err := mqtt.ReadConnect(clientReader{s})
	if err == nil {
		err = c.Check(p.name, p.level)
	}
	if err != nil {
		p.logger.Error("mqtt-proxy: failed to parse the Connect Command",
			zap.String("route", s.RouteID), zap.Stringer("remote", s.Remote), zap.Error(err))
		return Close(503)
	}
	if ce := p.logger.Check(zap.DebugLevel, "mqtt client id: "+c.ClientID); ce != nil {
		ce.Write(zap.String("route", s.RouteID))
	}
	if c.ClientID != "" {
		s.Put("mqtt_client_id", c.ClientID)
	}
	return nil
}

// Interface guards
var _ Prereader = (*mqttProxy)(nil)
