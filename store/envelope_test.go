package store

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	tests := []*registry.Object{
		{Kind: model.StreamRoutes, ID: "1", Value: []byte(`{"id":"1","create_time":1700000000,"upstream_id":"u"}`), CreatedIndex: 3, ModifiedIndex: 3},
		{Kind: model.SSLs, ID: "00000000000000000007", Value: []byte(`{"key":"-----BEGIN PRIVATE KEY-----\nMII...\n","sni":"a<b>&c"}`), CreatedIndex: 1, ModifiedIndex: 9},
		{Kind: model.Upstreams, ID: `we"ird/id`, Value: []byte("{ \"nodes\" : { \"127.0.0.1:80\" : 1 } }"), CreatedIndex: 0, ModifiedIndex: 0},
		{Kind: model.Upstreams, ID: "s", Value: []byte(`"just a string"`), CreatedIndex: 2, ModifiedIndex: 5},
	}
	for _, o := range tests {
		t.Run(o.ID, func(t *testing.T) {
			data, err := encodeEnvelope(o)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(data) {
				t.Fatalf("envelope is not JSON: %s", data)
			}
			got, err := decodeEnvelope(data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, o) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, o)
			}
			// The value is kept verbatim, so the file stays readable.
			if !bytes.Contains(data, o.Value) {
				t.Fatalf("value not stored verbatim: %s", data)
			}
		})
	}
}

func TestEncodeEnvelopeRejects(t *testing.T) {
	ok := func() *registry.Object {
		return &registry.Object{Kind: model.StreamRoutes, ID: "1", Value: []byte(`{}`), CreatedIndex: 1, ModifiedIndex: 1}
	}
	tests := []struct {
		name   string
		mutate func(*registry.Object) *registry.Object
		want   string
	}{
		{"nil", func(*registry.Object) *registry.Object { return nil }, "nil object"},
		{"static", func(o *registry.Object) *registry.Object { o.Static = true; return o }, "static"},
		{"no kind", func(o *registry.Object) *registry.Object { o.Kind = ""; return o }, "empty kind"},
		{"bad kind", func(o *registry.Object) *registry.Object { o.Kind = "../x"; return o }, "invalid kind"},
		{"no id", func(o *registry.Object) *registry.Object { o.ID = ""; return o }, "empty id"},
		{"bad utf8 id", func(o *registry.Object) *registry.Object { o.ID = "\xff"; return o }, "UTF-8"},
		{"no value", func(o *registry.Object) *registry.Object { o.Value = nil; return o }, "empty value"},
		{"null value", func(o *registry.Object) *registry.Object { o.Value = []byte(" null "); return o }, "empty value"},
		{"bad value", func(o *registry.Object) *registry.Object { o.Value = []byte(`{"a":`); return o }, "not valid JSON"},
		{"negative index", func(o *registry.Object) *registry.Object { o.CreatedIndex = -1; return o }, "bad revisions"},
		{"modified before created", func(o *registry.Object) *registry.Object { o.ModifiedIndex = 0; return o }, "bad revisions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := encodeEnvelope(tt.mutate(ok()))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestDecodeEnvelopeRejects(t *testing.T) {
	for _, data := range []string{
		``,
		`{`,
		`null`,
		`[]`,
		`{"kind":"stream_routes","id":"1","createdIndex":1,"modifiedIndex":1,"value":{"a":1}`, // truncated
		`{"kind":"stream_routes","id":"1","createdIndex":1,"modifiedIndex":1,"value":{}} x`,
		`{"kind":"stream_routes","id":"1","createdIndex":1,"modifiedIndex":1}`,
		`{"kind":"stream_routes","id":"1","createdIndex":1,"value":{}}`,
		`{"kind":"stream_routes","id":"1","modifiedIndex":1,"value":{}}`,
		`{"kind":"stream_routes","createdIndex":1,"modifiedIndex":1,"value":{}}`,
		`{"id":"1","createdIndex":1,"modifiedIndex":1,"value":{}}`,
		`{"kind":"stream_routes","id":"1","createdIndex":1,"modifiedIndex":1,"value":null}`,
		`{"kind":"gen_id","id":"1","createdIndex":1,"modifiedIndex":1,"value":{}}`,
		`{"kind":"stream_routes","id":"1","createdIndex":2,"modifiedIndex":1,"value":{}}`,
		`{"kind":"stream_routes","id":1,"createdIndex":1,"modifiedIndex":1,"value":{}}`,
	} {
		if o, err := decodeEnvelope([]byte(data)); err == nil {
			t.Errorf("decodeEnvelope(%s) = %+v, want an error", data, o)
		}
	}
}

func TestCounterEncoding(t *testing.T) {
	for _, n := range []int64{0, 1, 42, 1<<63 - 1} {
		data, err := encodeCounter(n)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeCounter(data)
		if err != nil || got != n {
			t.Fatalf("counter %d: got %d, %v", n, got, err)
		}
	}
	if _, err := encodeCounter(-1); err == nil {
		t.Fatal("negative counter accepted")
	}
	for _, bad := range []string{"", "-1", "1.5", "x", "99999999999999999999"} {
		if _, err := decodeCounter([]byte(bad)); err == nil {
			t.Errorf("decodeCounter(%q) accepted", bad)
		}
	}
}

// FuzzDecodeEnvelope checks that stored files of any content either fail
// to decode or give an object that stores and reads back unchanged.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(`{"kind":"stream_routes","id":"1","createdIndex":1,"modifiedIndex":2,"value":{"id":"1"}}`))
	f.Add([]byte(`{"kind":"ssls","id":"a\u0000","createdIndex":0,"modifiedIndex":0,"value":"x","extra":true}`))
	f.Add([]byte(`{"kind":"upstreams","id":"1","createdIndex":1,"modifiedIndex":1,"value":{"a":`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := decodeEnvelope(data)
		if err != nil {
			return
		}
		enc, err := encodeEnvelope(o)
		if err != nil {
			t.Fatalf("decoded object %+v does not encode: %v", o, err)
		}
		again, err := decodeEnvelope(enc)
		if err != nil {
			t.Fatalf("re-encoded %s does not decode: %v", enc, err)
		}
		if !reflect.DeepEqual(again, o) {
			t.Fatalf("round trip changed the object:\n got %+v\nwant %+v", again, o)
		}
	})
}
