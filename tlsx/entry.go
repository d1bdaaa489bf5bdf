package tlsx

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	"github.com/caddy-apisix/stream/model"
)

// DefaultVerifyDepth is the client-certificate verify depth of an SSL
// object whose client.depth is unset (APISIX's default).
const DefaultVerifyDepth = 1

// Entry is one server-type SSL object ready for handshakes: its parsed
// key pairs and the TLS configuration they are served with. Entries are
// immutable and shared between index rebuilds.
type Entry struct {
	// ID is the SSL object's id.
	ID model.ID
	// Certificates are the object's key pairs: cert/key first, then
	// certs/keys in order. crypto/tls picks the first the client supports,
	// so RSA and ECDSA pairs can be offered side by side.
	Certificates []tls.Certificate
	// ClientCAs, when not nil, are the client.ca roots: a client
	// certificate is then required and verified during the handshake.
	ClientCAs *x509.CertPool
	// VerifyDepth is the most intermediate certificates allowed between
	// the client certificate and a client.ca root, as nginx's
	// ssl_verify_depth (OpenSSL: 0 means the root signed the client
	// certificate directly).
	VerifyDepth int
	// Versions are the TLS versions allowed by ssl_protocols, ascending;
	// empty means the crypto/tls defaults.
	Versions []uint16

	config *tls.Config // served for this entry's names
	src    sslSource   // what the entry was built from, for reuse
}

// Config returns the server configuration used for handshakes selecting
// this entry. It is shared: do not modify it.
func (e *Entry) Config() *tls.Config { return e.config }

// sslSource is the part of an SSL object that an Entry is built from. Two
// objects with equal sources give equal entries.
type sslSource struct {
	cert, key   string
	certs, keys []string
	ca          string
	depth       int
	protocols   []string
}

func sourceOf(s *model.SSL) sslSource {
	src := sslSource{cert: s.Cert, key: s.Key, certs: s.Certs, keys: s.Keys, protocols: s.SSLProtocols}
	if s.Client != nil {
		src.ca = s.Client.CA
		src.depth = DefaultVerifyDepth
		if s.Client.Depth != nil {
			src.depth = *s.Client.Depth
		}
	}
	return src
}

func (a sslSource) equal(b sslSource) bool {
	// String comparison is cheap: equal pointers short-cut, and PEM texts
	// are a few KiB.
	return a.cert == b.cert && a.key == b.key && a.ca == b.ca && a.depth == b.depth &&
		slices.Equal(a.certs, b.certs) && slices.Equal(a.keys, b.keys) &&
		slices.Equal(a.protocols, b.protocols)
}

// protocolVersions maps the ssl_protocols enum to crypto/tls versions.
var protocolVersions = map[string]uint16{
	"TLSv1.1": tls.VersionTLS11,
	"TLSv1.2": tls.VersionTLS12,
	"TLSv1.3": tls.VersionTLS13,
}

// newEntry parses an SSL object's key material and builds its config.
// Error texts follow APISIX's check_ssl_conf where it has one.
func newEntry(s *model.SSL, src sslSource) (*Entry, error) {
	e := &Entry{ID: s.ID, src: src}
	if len(src.certs) != len(src.keys) {
		return nil, errors.New("mismatched number of certs and keys")
	}
	pair, err := ParseKeyPair(src.cert, src.key)
	if err != nil {
		return nil, err
	}
	e.Certificates = append(e.Certificates, pair)
	for i := range src.certs {
		pair, err := ParseKeyPair(src.certs[i], src.keys[i])
		if err != nil {
			return nil, fmt.Errorf("failed to handle cert-key pair[%d]: %w", i+1, err)
		}
		e.Certificates = append(e.Certificates, pair)
	}
	for _, p := range src.protocols {
		v, ok := protocolVersions[p]
		if !ok {
			return nil, fmt.Errorf("unsupported ssl_protocols value %q (want TLSv1.1, TLSv1.2 or TLSv1.3)", p)
		}
		if !slices.Contains(e.Versions, v) {
			e.Versions = append(e.Versions, v)
		}
	}
	slices.Sort(e.Versions)
	if s.Client != nil {
		if src.depth < 0 {
			return nil, fmt.Errorf("client.depth %d is negative", src.depth)
		}
		e.VerifyDepth = src.depth
		if e.ClientCAs, err = parseCAs(src.ca); err != nil {
			return nil, err
		}
	}
	e.config = e.buildConfig()
	return e, nil
}

// parseCAs reads every certificate of a PEM bundle into a pool.
func parseCAs(bundle string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	rest := []byte(bundle)
	n := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("failed to parse client.ca: %w", err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("failed to parse client.ca: no PEM certificate found")
	}
	return pool, nil
}

func (e *Entry) buildConfig() *tls.Config {
	cfg := &tls.Config{Certificates: e.Certificates}
	if len(e.Certificates) > 1 {
		cfg.Certificates, cfg.GetCertificate = nil, e.getCertificate
	}
	if n := len(e.Versions); n > 0 {
		cfg.MinVersion, cfg.MaxVersion = e.Versions[0], e.Versions[n-1]
	}
	if e.ClientCAs != nil {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = e.ClientCAs
	}
	// VerifyConnection runs on full and resumed handshakes alike, unlike
	// VerifyPeerCertificate, so a session ticket cannot skip the depth
	// check; crypto/tls itself re-verifies resumed chains against
	// ClientCAs.
	cfg.VerifyConnection = e.verifyConnection
	return cfg
}

// getCertificate picks the first key pair the client supports (key type,
// signature algorithms, cipher suites), as OpenSSL does with several
// certificates: unlike crypto/tls's own choice among Certificates it does
// not require the certificate to be valid for the SNI, so an RSA/ECDSA pair
// under a "*" object still goes by client support.
func (e *Entry) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	h := *hello
	h.ServerName = ""
	for i := range e.Certificates {
		if h.SupportsCertificate(&e.Certificates[i]) == nil {
			return &e.Certificates[i], nil
		}
	}
	return &e.Certificates[0], nil
}

// verifyConnection enforces what tls.Config cannot express: a version gap
// in ssl_protocols (["TLSv1.1","TLSv1.3"]) and the client verify depth.
func (e *Entry) verifyConnection(cs tls.ConnectionState) error {
	if len(e.Versions) > 0 && !slices.Contains(e.Versions, cs.Version) {
		return fmt.Errorf("TLS version %s not allowed by ssl_protocols of ssl %s", tls.VersionName(cs.Version), e.ID)
	}
	if e.ClientCAs == nil {
		return nil
	}
	for _, chain := range cs.VerifiedChains {
		// chain is leaf, intermediates..., root: OpenSSL's depth counts
		// the intermediates only.
		if len(chain)-2 <= e.VerifyDepth {
			return nil
		}
	}
	return fmt.Errorf("client certificate chain exceeds verify depth %d of ssl %s", e.VerifyDepth, e.ID)
}
