package balancer

import (
	"fmt"
	"strings"
)

// varKind says where a chash key variable comes from.
type varKind uint8

const (
	segLiteral varKind = iota
	varRemoteAddr
	varRemotePort
	varServerAddr
	varServerPort
	varServerName
	varEmpty // arg_*: there is no query string in stream
	varOther // looked up with Context.Vars
)

// segment is a literal piece or a variable of a chash key template.
type segment struct {
	kind varKind
	text string // the literal, or the variable name for varOther
}

// hashKey computes a connection's chash key (APISIX balancer/chash.lua
// fetch_chash_hash_key) and hashes it without building the string.
type hashKey struct {
	segs []segment
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
		return &hashKey{segs: []segment{varSegment(key)}}, nil
	case "vars_combinations":
		return &hashKey{segs: parseTemplate(key)}, nil
	case "header", "cookie", "consumer":
		return &hashKey{}, nil
	}
	return nil, fmt.Errorf("invalid hash_on: %s", hashOn)
}

func varSegment(name string) segment {
	switch name {
	case "remote_addr":
		return segment{kind: varRemoteAddr}
	case "remote_port":
		return segment{kind: varRemotePort}
	case "server_addr":
		return segment{kind: varServerAddr}
	case "server_port":
		return segment{kind: varServerPort}
	case "server_name":
		return segment{kind: varServerName}
	}
	if strings.HasPrefix(name, "arg_") {
		return segment{kind: varEmpty}
	}
	return segment{kind: varOther, text: name}
}

func isWord(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// parseTemplate splits a vars_combinations key like APISIX's resolve_var
// pattern (?<!\\)\$(\{(\w+)\}|(\w+)): "$name" and "${name}" are variables,
// everything else (including "\$name") is literal text.
func parseTemplate(tpl string) []segment {
	var segs []segment
	lit := 0 // start of the pending literal
	flush := func(end int) {
		if end > lit {
			segs = append(segs, segment{kind: segLiteral, text: tpl[lit:end]})
		}
	}
	for i := 0; i < len(tpl); i++ {
		if tpl[i] != '$' || (i > 0 && tpl[i-1] == '\\') {
			continue
		}
		j := i + 1
		if j < len(tpl) && tpl[j] == '{' {
			k := j + 1
			for k < len(tpl) && isWord(tpl[k]) {
				k++
			}
			if k > j+1 && k < len(tpl) && tpl[k] == '}' {
				flush(i)
				segs = append(segs, varSegment(tpl[j+1:k]))
				lit = k + 1
				i = k
			}
			continue
		}
		k := j
		for k < len(tpl) && isWord(tpl[k]) {
			k++
		}
		if k > j {
			flush(i)
			segs = append(segs, varSegment(tpl[j:k]))
			lit = k
			i = k - 1
		}
	}
	flush(len(tpl))
	return segs
}

// value is segment g's value for ctx.
func (g *segment) value(ctx *Context) string {
	switch g.kind {
	case segLiteral:
		return g.text
	case varRemoteAddr:
		return ctx.RemoteAddr
	case varRemotePort:
		return ctx.RemotePort
	case varServerAddr:
		return ctx.ServerAddr
	case varServerPort:
		return ctx.ServerPort
	case varServerName:
		return ctx.ServerName
	case varOther:
		if ctx.Vars != nil {
			return ctx.Vars(g.text)
		}
	}
	return ""
}

// sum is the hash of ctx's key. When no variable of the key has a value
// the key is remote_addr, as in APISIX.
func (k *hashKey) sum(ctx *Context) uint64 {
	resolved := false
	for i := range k.segs {
		if k.segs[i].kind != segLiteral && k.segs[i].value(ctx) != "" {
			resolved = true
			break
		}
	}
	if !resolved {
		return mix64(fnvString(fnvOffset, ctx.RemoteAddr))
	}
	h := uint64(fnvOffset)
	for i := range k.segs {
		h = fnvString(h, k.segs[i].value(ctx))
	}
	return mix64(h)
}

// The key and point hash: FNV-1a, stable across processes so every
// instance maps a key to the same node, then a finalizer so that similar
// strings spread over the ring.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// mix64 is MurmurHash3's fmix64.
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
