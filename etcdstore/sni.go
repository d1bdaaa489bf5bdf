package etcdstore

import (
	"context"
	"crypto/tls"
	"net"

	"google.golang.org/grpc/credentials"
)

// sniCreds are grpc TLS credentials that verify the server as sni instead
// of the endpoint's host, which clientv3 passes as the handshake's
// authority (and which wins over tls.Config.ServerName).
type sniCreds struct {
	credentials.TransportCredentials
	sni string
}

// newCreds returns TLS credentials for t; with t.ServerName set they
// verify that name (etcd.tls.sni).
func newCreds(t *tls.Config) credentials.TransportCredentials {
	c := credentials.NewTLS(t)
	if t.ServerName == "" {
		return c
	}
	return &sniCreds{TransportCredentials: c, sni: t.ServerName}
}

func (c *sniCreds) ClientHandshake(ctx context.Context, _ string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c.TransportCredentials.ClientHandshake(ctx, c.sni, raw)
}

func (c *sniCreds) Clone() credentials.TransportCredentials {
	return &sniCreds{TransportCredentials: c.TransportCredentials.Clone(), sni: c.sni}
}
