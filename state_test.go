//go:build linux

package stream

import (
	"testing"

	"github.com/caddy-apisix/stream/datacrypt"
)

// TestStoreKeyStableAcrossProvisions: two provisions of one config name
// the same store, so a reload keeps it open (an etcd store reopened on
// every reload dropped every route until etcd answered); another keyring
// names another store.
func TestStoreKeyStableAcrossProvisions(t *testing.T) {
	confs := []*datacrypt.Config{nil, {Keyring: []string{"qeddd145sfvddff3"}}, {Keyring: []string{}}}
	seen := map[string]int{}
	for i, de := range confs {
		var keys [2]string
		for j := range keys {
			kr, err := de.Build()
			if err != nil {
				t.Fatal(err)
			}
			a := &App{DataEncryption: de}
			a.deploy.keyring = kr
			keys[j] = a.storeKey()
		}
		if keys[0] != keys[1] {
			t.Errorf("data_encryption %d: two provisions give %q and %q", i, keys[0], keys[1])
		}
		if prev, ok := seen[keys[0]]; ok {
			t.Errorf("data_encryption %d and %d name the same store %q", prev, i, keys[0])
		}
		seen[keys[0]] = i
	}
}
