package proxy

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-apisix/stream/internal/testcert"
	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// FuzzAcceptedCompiles: a stream route, upstream or service that the Admin
// API's checks accept (model.Check*, with the schema defaults they insert)
// compiles into a snapshot, so no body the Admin API answers 200/201 for
// can then fail with a non-APISIX error. Seeds: the bodies below and the
// corpora of model's FuzzCheck* targets.
func FuzzAcceptedCompiles(f *testing.F) {
	cert, key := testcert.SelfSigned(f, "client.test")
	fixtures := []struct {
		kind     model.Kind
		id, body string
	}{
		{model.Upstreams, "1", `{"nodes":{"127.0.0.1:1995":1},"type":"roundrobin"}`},
		{model.SSLs, "c1", `{"type":"client","cert":` + strconv.Quote(cert) + `,"key":` + strconv.Quote(key) + `}`},
		{model.Services, "s1", `{"upstream_id":"1"}`},
	}
	refs := model.Refs{
		UpstreamExists: func(id string) bool { return id == "1" },
		SSLType: func(id string) (string, bool) {
			return "client", id == "c1"
		},
		ServiceExists: func(id string) bool { return id == "s1" },
	}
	kinds := []struct {
		kind  model.Kind
		check func(map[string]any, model.Refs) error
	}{
		{model.StreamRoutes, model.CheckStreamRoute},
		{model.Upstreams, model.CheckUpstream},
		{model.Services, model.CheckService},
	}
	seeds := [][]string{{
		`{}`, `{"server_port":9100,"upstream_id":"1"}`, `{"remote_addr":"::1/064","server_addr":"[::1]"}`,
		`{"remote_addr":"10.0.0.1/8","snis":["*.a.test","b.test"],"service_id":"s1"}`,
		`{"upstream":{"nodes":[{"host":"::1","port":1,"weight":1}],"type":"chash"}}`,
		`{"upstream":{"nodes":{"h:abc":1,"[::1]:0x50":2,"fe80::1":1}}}`,
		`{"plugins":{"ip-restriction":{"whitelist":["1.1.1.1","::1/064"]}}}`,
		`{"plugins":{"limit-conn":{"conn":1,"burst":0,"default_conn_delay":0.1,"key":"remote_addr"}}}`,
	}, {
		`{"nodes":{"127.0.0.1:80":1,"h:abc":1,"[::1]:0x50":1,"2001:db8::99999":1}}`,
		`{"nodes":[{"host":"[::1]","port":80,"weight":1}],"type":"least_conn","retries":0}`,
		`{"nodes":{},"type":"chash","key":"remote_addr"}`, `{"nodes":{"a:1":1},"tls":{"client_cert_id":"c1"}}`,
		`{"nodes":{"a:1":1},"checks":{"active":{"type":"tcp","healthy":{"interval":1}}}}`,
		`{"nodes":{"a:1":1},"timeout":{"connect":1.5,"send":1,"read":1},"scheme":"tls"}`,
	}, {
		`{}`, `{"upstream":{"nodes":{"127.0.0.1:1":1},"type":"chash","key":"remote_addr"}}`, `{"upstream_id":"1"}`,
		`{"plugins":{"ip-restriction":{"whitelist":["1.1.1.1"]}}}`,
	}}
	for k, list := range seeds {
		for _, s := range list {
			f.Add(uint8(k), []byte(s))
		}
	}
	for k, target := range []string{"FuzzCheckStreamRoute", "FuzzCheckUpstream", "FuzzCheckService"} {
		for _, b := range corpus(f, filepath.Join("..", "model", "testdata", "fuzz", target)) {
			f.Add(uint8(k), b)
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		k := kinds[int(kind)%len(kinds)]
		obj, err := model.DecodeObject(body)
		if err != nil || k.check(obj, refs) != nil {
			return
		}
		stored, err := model.EncodeObject(obj)
		if err != nil {
			t.Fatal(err)
		}
		rt := NewRuntime(nil)
		defer rt.Close()
		reg := registry.New()
		if err := reg.SetCompile(rt.Compile); err != nil {
			t.Fatal(err)
		}
		err = reg.Update(func(tx *registry.Tx) error {
			for _, o := range fixtures {
				if _, _, err := tx.Put(o.kind, o.id, []byte(o.body)); err != nil {
					return err
				}
			}
			_, _, err := tx.Put(k.kind, "f", stored)
			return err
		})
		if err != nil && !intBeyondDouble(err) {
			t.Fatalf("%s accepted by the Admin API checks but does not compile: %v\n%s", k.kind, err, stored)
		}
	})
}

// intBeyondDouble reports the one known refusal: an integral number beyond
// ±2^53, which APISIX holds as a Lua double and the typed forms (int
// fields) cannot.
func intBeyondDouble(err error) bool {
	var te *json.UnmarshalTypeError
	return errors.As(err, &te) && strings.HasPrefix(te.Value, "number") && te.Type.Kind() == reflect.Int
}

// corpus reads the []byte inputs of a "go test fuzz v1" corpus directory.
func corpus(tb testing.TB, dir string) [][]byte {
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	var out [][]byte
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if q, ok := strings.CutPrefix(line, "[]byte("); ok {
				s, err := strconv.Unquote(strings.TrimSuffix(q, ")"))
				if err != nil {
					tb.Fatalf("%s: %v", name, err)
				}
				out = append(out, []byte(s))
			}
		}
	}
	return out
}
