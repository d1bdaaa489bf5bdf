//go:build linux

package clustere2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// logged reports whether p wrote a log line at level with one of msgs
// and every field of fields, and returns the etcd lines it wrote.
func logged(p *e2e.Proc, level string, msgs []string, fields map[string]string) (bool, string) {
	var seen []string
	sc := bufio.NewScanner(strings.NewReader(p.Output()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l map[string]any
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		msg, _ := l["msg"].(string)
		if strings.Contains(msg, "etcd") {
			seen = append(seen, sc.Text())
		}
		if l["level"] != level || !slices.Contains(msgs, msg) {
			continue
		}
		ok := true
		for k, v := range fields {
			if fmt.Sprint(l[k]) != v {
				ok = false
			}
		}
		if ok {
			return true, ""
		}
	}
	return false, strings.Join(seen, "\n")
}

// enableAuth adds the user root (password s3cret) with the root role and
// turns authentication on, as an operator does.
func enableAuth(t testing.TB, cli *clientv3.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, step := range []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "s3cret"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("enabling etcd auth: %v", err)
		}
	}
}

// TestEtcdProblemLogs: the lines an operator acts on, with the key or the
// hosts and what to check: an etcd item no node can read (ERROR, its
// key), a wrong password (WARN, check etcd.user and etcd.password), etcd
// gone (WARN with its host) and back (INFO).
func TestEtcdProblemLogs(t *testing.T) {
	ec := e2e.StartEtcd(t, 1, "http")
	host := fmt.Sprint([]string{ec.Hosts()[0]})
	raw := ec.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := startGateway(t, "A", etcdConf(ec.Hosts(), nil), nil)
	a.must(201, "PUT", "/apisix/admin/stream_routes/r1", fmt.Sprintf(`{"upstream":{"nodes":{%q:1}}}`, backend(t, "b1")))
	a.answers("b1 hi")

	if _, err := raw.Put(ctx, "/apisix/stream_routes/broken", "{not json"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "A logs the unreadable item", func() (bool, string) {
		return logged(a.proc, "error", []string{"skipping invalid etcd item; the last valid version stays"},
			map[string]string{"key": "/apisix/stream_routes/broken", "action": "fix the value with the Admin API or etcdctl, or delete the key"})
	})
	a.answers("b1 hi")

	ec.Stop(0)
	// the probe or the watch sees it first
	eventually(t, "A logs etcd gone", func() (bool, string) {
		return logged(a.proc, "warn", []string{"etcd connection lost; traffic keeps the last loaded configuration, writes answer 503",
			"etcd sync failed; retrying, traffic keeps the last loaded configuration"},
			map[string]string{"etcd_host": host, "action": "check that etcd runs at etcd.host and that this node reaches it"})
	})
	a.answers("b1 hi")
	ec.Restart(0, false)
	eventually(t, "A logs etcd back", func() (bool, string) {
		return logged(a.proc, "info", []string{"etcd reachable again"}, map[string]string{"etcd_host": host})
	})

	// auth on, as an operator does; a node with a wrong password
	enableAuth(t, ec.Client())
	c := startGateway(t, "C", etcdConf(ec.Hosts(), map[string]any{"user": "root", "password": "wrong"}), map[string]any{"role": "data_plane"})
	eventually(t, "C logs the failed authentication", func() (bool, string) {
		return logged(c.proc, "warn", []string{"etcd sync failed; retrying, traffic keeps the last loaded configuration"},
			map[string]string{"etcd_host": host, "action": "check etcd.user and etcd.password"})
	})
}
