package router

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/caddy-apisix/stream/model"
)

// FiltersOf returns the match filters of a validated stream route, and
// whether it is a subordinate xRPC route (protocol.superior_id), which is
// never matched at entry (apisix/stream/router/ip_port.lua).
func FiltersOf(id string, sr *model.StreamRoute) (r Route, subordinate bool, err error) {
	r.ID = id
	if r.RemoteAddr, err = ParsePrefix(sr.RemoteAddr); err != nil {
		return r, false, fmt.Errorf("stream route %s: invalid remote_addr: %s", id, sr.RemoteAddr)
	}
	if r.ServerAddr, err = ParsePrefix(sr.ServerAddr); err != nil {
		return r, false, fmt.Errorf("stream route %s: invalid server_addr: %s", id, sr.ServerAddr)
	}
	r.ServerPort = uint16(sr.ServerPort)
	if sr.SNI != "" {
		r.SNIs = append(r.SNIs, sr.SNI)
	}
	r.SNIs = append(r.SNIs, sr.SNIs...)
	if len(sr.Protocol) > 0 && !bytes.Equal(sr.Protocol, []byte("null")) {
		var p struct {
			SuperiorID json.RawMessage `json:"superior_id"`
		}
		subordinate = json.Unmarshal(sr.Protocol, &p) == nil && len(p.SuperiorID) > 0
	}
	return r, subordinate, nil
}
