package datacrypt

import (
	"bytes"
	"fmt"

	"github.com/caddy-apisix/stream/model"
)

// The encrypted fields, as APISIX's Admin API encrypts them: an SSL's key
// and keys[i] (apisix/admin/resource.lua), an upstream's tls.client_key
// (apisix/upstream.lua encrypt_conf), and the inline upstream of services
// (apisix/admin/services.lua) and stream routes
// (apisix/admin/stream_routes.lua encrypt_conf, since 3.18).

// Seal returns value with its private keys encrypted with the first
// keyring entry. A value without such fields is returned unchanged (same
// bytes); one with them is re-encoded.
func (kr *Keyring) Seal(kind model.Kind, value []byte) ([]byte, error) {
	return kr.transform(kind, value, func(s string) (string, error) { return kr.Encrypt(s), nil })
}

// Open returns value with its private keys decrypted. An error names the
// field that does not decrypt.
func (kr *Keyring) Open(kind model.Kind, value []byte) ([]byte, error) {
	return kr.transform(kind, value, kr.Decrypt)
}

func (kr *Keyring) transform(kind model.Kind, value []byte, fn func(string) (string, error)) ([]byte, error) {
	if kr.Empty() || !mayHoldKeys(kind, value) {
		return value, nil
	}
	obj, err := model.DecodeObject(value)
	if err != nil {
		return value, nil // not ours to judge: the caller validates
	}
	changed := false
	apply := func(m map[string]any, field, name string) error {
		s, ok := m[field].(string)
		if !ok {
			return nil
		}
		out, err := fn(s)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if out != s {
			m[field] = out
			changed = true
		}
		return nil
	}
	clientKey := func(up any, name string) error {
		u, _ := up.(map[string]any)
		tls, _ := u["tls"].(map[string]any)
		if tls == nil {
			return nil
		}
		return apply(tls, "client_key", name)
	}
	switch kind {
	case model.SSLs:
		if err := apply(obj, "key", "key"); err != nil {
			return nil, err
		}
		if keys, ok := obj["keys"].([]any); ok {
			for i := range keys {
				s, ok := keys[i].(string)
				if !ok {
					continue
				}
				out, err := fn(s)
				if err != nil {
					return nil, fmt.Errorf("keys[%d]: %w", i, err)
				}
				if out != s {
					keys[i], changed = out, true
				}
			}
		}
	case model.Upstreams:
		if err := clientKey(obj, "tls.client_key"); err != nil {
			return nil, err
		}
	default:
		if err := clientKey(obj["upstream"], "upstream.tls.client_key"); err != nil {
			return nil, err
		}
	}
	if !changed {
		return value, nil
	}
	return model.EncodeObject(obj)
}

// mayHoldKeys is a cheap filter before decoding.
func mayHoldKeys(kind model.Kind, value []byte) bool {
	switch kind {
	case model.SSLs:
		return bytes.Contains(value, []byte(`"key`))
	case model.Upstreams, model.StreamRoutes, model.Services:
		return bytes.Contains(value, []byte(`"client_key"`))
	}
	return false
}
