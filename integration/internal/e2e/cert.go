//go:build linux

package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// Cert is a generated ECDSA P-256 certificate with its key, parsed and as
// PEM (the key PKCS #8). It is valid from an hour ago for a day.
type Cert struct {
	// Cert is the parsed certificate.
	Cert *x509.Certificate
	// Key is its private key.
	Key crypto.Signer
	// CertPEM and KeyPEM are the certificate and key as PEM.
	CertPEM, KeyPEM string
}

// serial numbers the certificates of a test binary.
var serial atomic.Int64

// NewCert is a self-signed certificate for names (the first is the
// subject CN) that is also its own CA: a client trusts it with Pool.
func NewCert(t testing.TB, names ...string) *Cert {
	t.Helper()
	return issue(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: names[0]},
		DNSNames:              names,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, nil)
}

// NewCA is a self-signed CA certificate with subject CN cn (organization
// "e2e"), for NewLeaf.
func NewCA(t testing.TB, cn string) *Cert {
	t.Helper()
	return NewSubCA(t, cn, nil)
}

// NewSubCA is NewCA signed by parent: an intermediate CA.
func NewSubCA(t testing.TB, cn string, parent *Cert) *Cert {
	t.Helper()
	return issue(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"e2e"}},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, parent)
}

// NewLeaf is a leaf certificate with subject CN cn (organization "e2e")
// and DNS names, signed by parent (self-signed when nil), for server and
// client authentication.
func NewLeaf(t testing.TB, cn string, parent *Cert, names ...string) *Cert {
	t.Helper()
	return issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: []string{"e2e"}},
		DNSNames:    names,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, parent)
}

// NewCertUntil is NewCert valid until notAfter instead of for a day.
func NewCertUntil(t testing.TB, notAfter time.Time, names ...string) *Cert {
	t.Helper()
	return issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: names[0]},
		DNSNames:    names,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		NotAfter:    notAfter,
	}, nil)
}

// issue completes tmpl (serial, validity from an hour ago until its
// NotAfter, or for a day when that is unset), signs it with parent (itself
// when nil) and encodes it.
func issue(t testing.TB, tmpl *x509.Certificate, parent *Cert) *Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(serial.Add(1))
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	}
	signerCert, signerKey := tmpl, crypto.Signer(key)
	if parent != nil {
		signerCert, signerKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	NoteSecret("the private key of "+tmpl.Subject.CommonName, keyPEM)
	return &Cert{
		Cert:    c,
		Key:     key,
		CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:  keyPEM,
	}
}

// TLS is c as a crypto/tls key pair.
func (c *Cert) TLS() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.Cert.Raw}, PrivateKey: c.Key, Leaf: c.Cert}
}

// Pool is a certificate pool holding c, for a client that trusts it.
func (c *Cert) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Cert)
	return p
}

// Files writes c's certificate and key as PEM files dir/name.crt and
// dir/name.key and returns their paths.
func (c *Cert) Files(t testing.TB, dir, name string) (certPath, keyPath string) {
	t.Helper()
	certPath, keyPath = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certPath, []byte(c.CertPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, []byte(c.KeyPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}
