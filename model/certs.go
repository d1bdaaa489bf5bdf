package model

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"iter"
	"strings"
)

// The texts ngx.ssl's parse_pem_cert / parse_pem_priv_key return, which
// apisix/ssl.lua validate() prefixes.
const (
	errParseCert = "failed to parse cert: PEM_read_bio_X509_AUX() failed"
	errParseKey  = "failed to parse key: PEM_read_bio_PrivateKey() failed"
	// errDecrypt is what validate() says of a key that does not start with
	// "---": APISIX takes it for a keyring-encrypted key, and this build
	// stores keys unencrypted, so no such key can be decrypted.
	errDecrypt = "failed to decrypt previous encrypted key"
	// errKeyMismatch has no APISIX counterpart (APISIX leaves "check if
	// key & cert match" as a TODO); this project rejects such pairs.
	errKeyMismatch = "failed to match cert and key: key values mismatch"
)

// parsePEMCert returns the first certificate of a PEM text. Like OpenSSL's
// PEM reader it skips blocks of other types.
func parsePEMCert(s string) (*x509.Certificate, bool) {
	for b := range pemBlocks(s) {
		if b.Type == "CERTIFICATE" || b.Type == "X509 CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			return c, err == nil
		}
	}
	return nil, false
}

// parsePEMKey returns the first private key of a PEM text (PKCS#8, PKCS#1
// or SEC 1). Encrypted keys fail, as OpenSSL fails without a passphrase.
func parsePEMKey(s string) (crypto.PrivateKey, bool) {
	for b := range pemBlocks(s) {
		if !strings.HasSuffix(b.Type, "PRIVATE KEY") {
			continue
		}
		if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
			return k, true
		}
		if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
			return k, true
		}
		if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
			return k, true
		}
		return nil, false
	}
	return nil, false
}

// pemBlocks yields the PEM blocks of s in order, as OpenSSL's PEM reader
// walks them.
func pemBlocks(s string) iter.Seq[*pem.Block] {
	return func(yield func(*pem.Block) bool) {
		rest := []byte(s)
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil || !yield(b) {
				return
			}
		}
	}
}

// validateCertKey is apisix/ssl.lua validate(cert, key): the cert must
// parse, then (when withKey) the key must be plain PEM, parse and match
// the cert.
func validateCertKey(cert, key string, withKey bool) *Error {
	c, ok := parsePEMCert(cert)
	if !ok {
		return &Error{Msg: errParseCert}
	}
	if !withKey {
		return nil
	}
	if !strings.HasPrefix(key, "---") {
		return &Error{Msg: errDecrypt}
	}
	k, ok := parsePEMKey(key)
	if !ok {
		return &Error{Msg: errParseKey}
	}
	if !keyMatches(c, k) {
		return &Error{Msg: errKeyMismatch}
	}
	return nil
}

// keyMatches reports whether the private key belongs to the certificate.
func keyMatches(c *x509.Certificate, k crypto.PrivateKey) bool {
	type publicKeyer interface{ Public() crypto.PublicKey }
	pk, ok := k.(publicKeyer)
	if !ok {
		return false
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	switch pub := c.PublicKey.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return pub.(equaler).Equal(pk.Public())
	}
	return false
}
