package model

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

// decode parses a test body the way the admin layer does (UseNumber).
func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("bad test JSON %q: %v", s, err)
	}
	return m
}

// pair is a PEM certificate and its PEM private key.
type pair struct{ cert, key string }

var (
	certsOnce sync.Once
	rsaPair   pair
	ecPair    pair
	otherPair pair // a second ECDSA pair, to build mismatches
)

// testCerts generates the self-signed test certificates once.
func testCerts(t testing.TB) {
	t.Helper()
	certsOnce.Do(func() {
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaPair = makePair(rk, "rsa.test", x509.MarshalPKCS1PrivateKey(rk), "RSA PRIVATE KEY")
		ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		der, err := x509.MarshalECPrivateKey(ek)
		if err != nil {
			panic(err)
		}
		ecPair = makePair(ek, "ec.test", der, "EC PRIVATE KEY")
		ok, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		der, err = x509.MarshalPKCS8PrivateKey(ok)
		if err != nil {
			panic(err)
		}
		otherPair = makePair(ok, "other.test", der, "PRIVATE KEY")
	})
}

// makePair self-signs a certificate for name with key.
func makePair(key crypto.Signer, name string, keyDER []byte, keyType string) pair {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic(err)
	}
	return pair{
		cert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		key:  string(pem.EncodeToMemory(&pem.Block{Type: keyType, Bytes: keyDER})),
	}
}

// js JSON-encodes a string for splicing into test bodies.
func js(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic(err)
	}
	return strings.TrimSpace(b.String())
}

// wantErr compares an error against the expected APISIX text ("" = ok).
func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if _, ok := err.(*Error); !ok {
		t.Fatalf("error %T is not *Error", err)
	}
	if err.Error() != want {
		t.Fatalf("error\n got %q\nwant %q", err.Error(), want)
	}
}
