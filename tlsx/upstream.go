package tlsx

import (
	"crypto/tls"
	"fmt"
)

// DefaultUpstreamSNI is the server name APISIX sends to a TLS upstream when
// the client connection has no SNI.
const DefaultUpstreamSNI = "apisix_backend"

// UpstreamConfig returns the client configuration for a TLS upstream
// (scheme "tls"). serverName is sent as SNI: the client's SNI, else
// DefaultUpstreamSNI. The upstream certificate is verified against the
// system roots for serverName only when verify is set; APISIX never
// verifies. clientCert, when not nil, is always presented if the upstream
// asks for a certificate, whatever CAs it names, as nginx does.
func UpstreamConfig(serverName string, verify bool, clientCert *tls.Certificate) *tls.Config {
	cfg := &tls.Config{
		ServerName:         serverName,
		InsecureSkipVerify: !verify, //nolint:gosec // APISIX semantics; verify opts in
	}
	if clientCert != nil {
		cert := clientCert
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return cert, nil
		}
	}
	return cfg
}

// ParseKeyPair parses a PEM certificate chain and its PEM private key, as
// found in SSL objects and upstream tls.client_cert/client_key. The leaf is
// parsed into Leaf. Errors name which half is wrong where possible.
func ParseKeyPair(certPEM, keyPEM string) (tls.Certificate, error) {
	if certPEM == "" {
		return tls.Certificate{}, fmt.Errorf("failed to parse cert: empty")
	}
	if keyPEM == "" {
		return tls.Certificate{}, fmt.Errorf("failed to parse key: empty")
	}
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("failed to parse cert/key pair: %w", err)
	}
	return pair, nil
}
