//go:build linux

package clustere2e

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// sniCreds verify the etcd server as "localhost" whatever the endpoint's
// host (clientv3 hands the endpoint's host to the handshake).
type sniCreds struct {
	credentials.TransportCredentials
}

func (c sniCreds) ClientHandshake(ctx context.Context, _ string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c.TransportCredentials.ClientHandshake(ctx, "localhost", raw)
}

// TestAuthAndTLS: etcd with client-certificate TLS and user/password
// authentication; the gateways connect with the etcd block's tls and
// user/password and serve as usual.
func TestAuthAndTLS(t *testing.T) {
	dir := t.TempDir()
	ca := e2e.NewCA(t, "etcd-ca")
	srv := e2e.NewLeaf(t, "etcd", ca, "localhost")
	cli := e2e.NewLeaf(t, "gateway", ca)
	srvCert, srvKey := srv.Files(t, dir, "server")
	cliCert, cliKey := cli.Files(t, dir, "client")
	caFile, _ := ca.Files(t, dir, "ca")

	ec := e2e.NewEtcd(t, 1, "https", "--cert-file", srvCert, "--key-file", srvKey,
		"--trusted-ca-file", caFile, "--client-cert-auth")
	ec.StartAll()
	tlsOpt := func(c *clientConfig) {
		c.TLS = &tls.Config{ServerName: "localhost", RootCAs: ca.Pool(), Certificates: []tls.Certificate{cli.TLS()}}
		c.DialOptions = []grpc.DialOption{grpc.WithTransportCredentials(sniCreds{credentials.NewTLS(c.TLS)})}
	}
	ec.WaitHealthy(tlsOpt)
	// enable auth with a root user, as an operator does
	enableAuth(t, ec.Client(tlsOpt))

	conf := etcdConf(ec.Hosts(), map[string]any{
		"user": "root", "password": "s3cret",
		"tls": map[string]any{"cert": cliCert, "key": cliKey, "ca": caFile, "sni": "localhost"},
	})
	a := startGateway(t, "A", conf, nil)
	b := startGateway(t, "B", conf, map[string]any{"role": "data_plane"})
	b1 := backend(t, "b1")
	a.must(201, "PUT", "/apisix/admin/upstreams/u1", upstreamBody(b1))
	a.must(201, "PUT", "/apisix/admin/stream_routes/r1", `{"upstream_id":"u1"}`)
	b.answers("b1 hi")

	// wrong password: the node stays empty and says why
	bad := etcdConf(ec.Hosts(), map[string]any{
		"user": "root", "password": "wrong",
		"tls": map[string]any{"cert": cliCert, "key": cliKey, "ca": caFile, "sni": "localhost"},
	})
	c := startGateway(t, "C", bad, map[string]any{"role": "data_plane"})
	if got := c.ask(); got != "" {
		t.Fatalf("a node that cannot authenticate must serve nothing: %q", got)
	}
	if e := c.clusterView()["etcd"].(map[string]any); e["connected"] != false {
		t.Fatalf("C view: %v", e)
	}
}
