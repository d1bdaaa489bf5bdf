package standalone

import (
	"bytes"
	"fmt"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// publishedKinds are the kinds a document replaces.
var publishedKinds = []model.Kind{model.SSLs, model.Upstreams, model.Services, model.StreamRoutes, model.PluginMetadata}

// Publish replaces every stored object of the registry with the checked
// document's, in one transaction: the data path sees the old objects or
// the new ones. Unchanged objects are kept as they are (their balancer and
// health state with them); a failure (the compile hook refusing the new
// state, an id taken by a Caddy config object) changes nothing.
func Publish(reg *registry.Registry, c *Checked) error {
	want := map[model.Kind]map[string]bool{}
	for _, o := range c.Objects {
		if want[o.Kind] == nil {
			want[o.Kind] = map[string]bool{}
		}
		want[o.Kind][o.ID] = true
	}
	return reg.Update(func(tx *registry.Tx) error {
		for _, kind := range publishedKinds {
			for _, o := range tx.List(kind) {
				if o.Static || want[kind][o.ID] {
					continue
				}
				if _, err := tx.Delete(kind, o.ID); err != nil {
					return err
				}
			}
		}
		for _, o := range c.Objects {
			prev := tx.Get(o.Kind, o.ID)
			if prev != nil && prev.Static {
				return fmt.Errorf("%s %s is defined in the Caddy config and is read-only", o.Kind.Noun(), o.ID)
			}
			if prev != nil && bytes.Equal(prev.Value, o.Value) {
				continue
			}
			if _, _, err := tx.Put(o.Kind, o.ID, o.Value); err != nil {
				return err
			}
		}
		return nil
	})
}
