package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// startEtcd runs a real single-member etcd (Debian's etcd-server) and
// returns its client URL. Without it the test skips, or fails with CI=true.
func startEtcd(t *testing.T) string { return startEtcdB(t) }

// startEtcdB is startEtcd for tests and benchmarks.
func startEtcdB(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("etcd not found: install the etcd-server package (scripts/test.sh does)")
		}
		t.Skip("etcd not found: install the etcd-server package")
	}
	var ports [2]int
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	cmd := exec.Command(bin, "--name", "t", "--data-dir", t.TempDir(),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "t="+peer, "--log-level", "error", "--logger", "zap")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return client
}

// openShared opens a registry on an etcd store at url, closed with the
// test.
func openShared(t *testing.T, url string) (*Store, *registry.Registry) {
	t.Helper()
	cfg := &Config{Host: Hosts{url}, Timeout: Seconds(5 * time.Second)}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := New(Options{Config: cfg, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New()
	if err := reg.OpenShared(st, nil, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.CloseShared)
	return st, reg
}

func TestStoreCommit(t *testing.T) {
	url := startEtcd(t)
	st, reg := openShared(t, url)
	deadline := time.Now().Add(10 * time.Second)
	for !st.Status().Connected && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}

	var obj *registry.Object
	err := reg.Update(func(tx *registry.Tx) error {
		var err error
		obj, _, err = tx.Put(model.Upstreams, "1", []byte(`{"id":"1","nodes":{"127.0.0.1:1":1}}`))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// the write is acknowledged after this node applied its own event
	var got *registry.Object
	reg.View(func(v registry.View) { got = v.Get(model.Upstreams, "1") })
	if got == nil || got.ModifiedIndex != obj.ModifiedIndex {
		t.Fatalf("after Update: %+v, want modifiedIndex %d", got, obj.ModifiedIndex)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(context.Background(), "/apisix/upstreams/1")
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].ModRevision != got.ModifiedIndex || resp.Kvs[0].CreateRevision != got.CreatedIndex {
		t.Fatalf("etcd: %v %v; registry %+v", resp, err, got)
	}

	// a lost compare-and-swap
	if _, err := cli.Put(context.Background(), "/apisix/upstreams/1", `{"nodes":{"127.0.0.1:2":1}}`); err != nil {
		t.Fatal(err)
	}
	_, err = st.Commit(registry.Change{Kind: model.Upstreams, ID: "1", Value: []byte(`{}`), IfModified: got.ModifiedIndex})
	if !errors.Is(err, registry.ErrChanged) {
		t.Fatalf("stale CAS: %v", err)
	}

	// ids from /gen_id's revision
	rev, err := st.GenID()
	if err != nil {
		t.Fatal(err)
	}
	g, _ := cli.Get(context.Background(), "/apisix/gen_id")
	if len(g.Kvs) != 1 || g.Kvs[0].ModRevision != rev {
		t.Fatalf("gen_id %v, id revision %d", g.Kvs, rev)
	}
}

// The counts and highest modifiedIndex per kind that a watch event leaves
// are those a recount of every served object gives: puts, a put and a
// delete in one transaction, the deletion of the newest object, an
// invalid value (skipped), and a deleted kind's last object.
func TestWatchCounts(t *testing.T) {
	url := startEtcd(t)
	st, reg := openShared(t, url)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	const up = `{"nodes":{"127.0.0.1:1":1},"type":"roundrobin"}`
	check := func(step string, rev int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for st.Status().Revision < rev && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		got := st.Status()
		if got.Revision < rev {
			t.Fatalf("%s: revision %d, want %d", step, got.Revision, rev)
		}
		objects, maxMod := map[string]int{}, map[string]int64{}
		reg.View(func(v registry.View) {
			for _, k := range DefaultKinds {
				objects[string(k)] = 0
				for _, o := range v.List(k) {
					if !o.Static {
						objects[string(k)]++
						maxMod[string(k)] = max(maxMod[string(k)], o.ModifiedIndex)
					}
				}
			}
		})
		if fmt.Sprint(got.Objects) != fmt.Sprint(objects) || fmt.Sprint(got.MaxModifiedIndex) != fmt.Sprint(maxMod) {
			t.Fatalf("%s: status %v %v, recount %v %v", step, got.Objects, got.MaxModifiedIndex, objects, maxMod)
		}
	}
	put := func(key, val string) int64 {
		t.Helper()
		resp, err := cli.Put(ctx, key, val)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}
	for _, id := range []string{"1", "2", "3"} {
		put("/apisix/upstreams/"+id, up)
	}
	check("puts", put("/apisix/services/1", `{"upstream_id":"1"}`))
	txn, err := cli.Txn(ctx).Then(clientv3.OpPut("/apisix/upstreams/4", up), clientv3.OpDelete("/apisix/upstreams/2"),
		clientv3.OpPut("/apisix/upstreams/1", up)).Commit()
	if err != nil {
		t.Fatal(err)
	}
	check("one transaction", txn.Header.Revision)
	del, err := cli.Delete(ctx, "/apisix/upstreams/1") // the newest, with upstreams/4
	if err != nil {
		t.Fatal(err)
	}
	check("newest deleted", del.Header.Revision)
	check("invalid value", put("/apisix/upstreams/3", `{"nodes":5}`))
	if del, err = cli.Delete(ctx, "/apisix/services/1"); err != nil {
		t.Fatal(err)
	}
	check("last service deleted", del.Header.Revision)
}
