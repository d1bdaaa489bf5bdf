package standalone

import (
	"errors"
	"testing"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

func checked(t *testing.T, doc string) *Checked {
	t.Helper()
	d, err := Parse([]byte(doc), JSON, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c, errs := Check(d)
	if len(errs) > 0 {
		t.Fatal(errs[0].Message())
	}
	return c
}

// TestPublish replaces the objects whole, keeps unchanged ones as they
// are, and changes nothing when the compile hook refuses the result.
func TestPublish(t *testing.T) {
	reg := registry.New()
	refuse := false
	if err := reg.Open(nil, func(registry.View) error {
		if refuse {
			return errors.New("refused")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	get := func(kind model.Kind, id string) (o *registry.Object) {
		reg.View(func(v registry.View) { o = v.Get(kind, id) })
		return o
	}
	const u = `{"id":"u","nodes":{"127.0.0.1:1":1}}`
	if err := Publish(reg, checked(t, `{"upstreams":[`+u+`],"stream_routes":[{"id":"a"},{"id":"b"}]}`)); err != nil {
		t.Fatal(err)
	}
	keep := get(model.Upstreams, "u")
	if err := Publish(reg, checked(t, `{"upstreams":[`+u+`],"stream_routes":[{"id":"b","server_port":1}]}`)); err != nil {
		t.Fatal(err)
	}
	if get(model.Upstreams, "u") != keep {
		t.Fatal("an unchanged upstream was replaced")
	}
	if get(model.StreamRoutes, "a") != nil || get(model.StreamRoutes, "b") == nil {
		t.Fatal("stream routes not replaced")
	}
	refuse = true
	if err := Publish(reg, checked(t, `{}`)); err == nil {
		t.Fatal("refused publish succeeded")
	}
	if get(model.Upstreams, "u") != keep || get(model.StreamRoutes, "b") == nil {
		t.Fatal("a refused publish changed the objects")
	}
}
