package balancer

import (
	"fmt"

	"github.com/caddy-apisix/stream/internal/hash64"
	"github.com/caddy-apisix/stream/vars"
)

// hashKey computes a connection's chash key (APISIX balancer/chash.lua
// fetch_chash_hash_key) and hashes it without building the string.
type hashKey struct {
	tpl vars.Template
}

// newHashKey validates hash_on and key. hash_on "vars" takes a variable
// name, "vars_combinations" a template such as "$remote_addr$server_port";
// "header", "cookie" and "consumer" have no value in stream, and neither
// has an empty key, so they always fall back to remote_addr.
func newHashKey(hashOn, key string) (*hashKey, error) {
	switch hashOn {
	case "", "vars":
		if key == "" {
			return &hashKey{}, nil
		}
		return &hashKey{tpl: vars.Single(key)}, nil
	case "vars_combinations":
		return &hashKey{tpl: vars.ParseTemplate(key)}, nil
	case "header", "cookie", "consumer":
		return &hashKey{}, nil
	}
	return nil, fmt.Errorf("invalid hash_on: %s", hashOn)
}

var remoteAddr = vars.Single("remote_addr")

// sum is the hash of ctx's key. When no variable of the key has a value
// the key is remote_addr, as in APISIX.
func (k *hashKey) sum(ctx *Context) uint64 {
	var empty vars.Set
	s := ctx.Vars
	if s == nil {
		s = &empty
	}
	tpl := k.tpl
	if !tpl.Resolved(s) {
		tpl = remoteAddr
	}
	var buf [128]byte
	return hash64.Mix(hash64.AddBytes(hash64.Offset, tpl.Append(buf[:0], s)))
}
