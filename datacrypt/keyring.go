// Package datacrypt encrypts private keys at rest exactly as APISIX does
// (apisix/core/data_encryption.lua, apisix/ssl.lua aes_encrypt_pkey): each
// keyring entry is both the AES key and the IV (AES-128-CBC for a 16-byte
// entry, AES-256-CBC for a 32-byte one, whose first 16 bytes are the IV),
// PKCS#7 padding, standard base64 with padding. Encryption uses the first
// entry; decryption tries every entry in order. A value that starts with
// "---" is a plain PEM and passes through both ways, so a store may hold a
// mix of encrypted and clear values.
package datacrypt

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// DefaultKeyring is APISIX's default apisix.data_encryption.keyring
// (apisix/cli/config.lua).
var DefaultKeyring = []string{"qeddd145sfvddff3", "edd1c9f0985e76a2"}

// Keyring encrypts and decrypts values. The zero value (no entries) stores
// values in clear text, as APISIX does with an empty keyring.
type Keyring struct {
	blocks []cipher.Block
	ivs    [][]byte
}

// CheckKey reports whether k can be a keyring entry: exactly 16 or 32
// bytes (apisix/cli/schema.lua keyring_key_schema).
func CheckKey(k string) error {
	if len(k) != 16 && len(k) != 32 {
		return fmt.Errorf("expected a 16 byte (AES-128) or 32 byte (AES-256) key, got %d bytes", len(k))
	}
	return nil
}

// NewKeyring builds a keyring from its entries, in order.
func NewKeyring(keys []string) (*Keyring, error) {
	kr := &Keyring{}
	for i, k := range keys {
		if err := CheckKey(k); err != nil {
			return nil, fmt.Errorf("keyring[%d]: %w", i, err)
		}
		b, err := aes.NewCipher([]byte(k))
		if err != nil {
			return nil, fmt.Errorf("keyring[%d]: %w", i, err)
		}
		kr.blocks = append(kr.blocks, b)
		kr.ivs = append(kr.ivs, []byte(k)[:aes.BlockSize])
	}
	return kr, nil
}

// Empty reports whether the keyring has no entries (values stay clear).
func (kr *Keyring) Empty() bool { return kr == nil || len(kr.blocks) == 0 }

// isPlain reports whether v is a clear PEM (apisix/ssl.lua: "---").
func isPlain(v string) bool { return strings.HasPrefix(v, "---") }

// Encrypt returns v encrypted with the first entry and base64-encoded; a
// value that is not a plain PEM, or an empty keyring, leaves v as it is.
func (kr *Keyring) Encrypt(v string) string {
	if kr.Empty() || !isPlain(v) {
		return v
	}
	return kr.encrypt(v)
}

// encrypt is AES-CBC with the first entry, PKCS#7, base64.
func (kr *Keyring) encrypt(v string) string {
	pad := aes.BlockSize - len(v)%aes.BlockSize
	buf := make([]byte, len(v)+pad)
	copy(buf, v)
	copy(buf[len(v):], bytes.Repeat([]byte{byte(pad)}, pad))
	cipher.NewCBCEncrypter(kr.blocks[0], kr.ivs[0]).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf)
}

// Errors of Decrypt, with APISIX's texts (apisix/core/data_encryption.lua).
var (
	ErrBase64  = errors.New("base64 decode ssl key failed")
	ErrDecrypt = errors.New("decrypt ssl key failed")
)

// Decrypt returns the clear value of v. A plain PEM is returned as it is;
// otherwise v is base64-decoded and decrypted with each entry in turn, the
// first one whose padding checks winning.
func (kr *Keyring) Decrypt(v string) (string, error) {
	if isPlain(v) || kr.Empty() {
		return v, nil
	}
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return "", ErrBase64
	}
	if len(raw) == 0 || len(raw)%aes.BlockSize != 0 {
		return "", ErrDecrypt
	}
	buf := make([]byte, len(raw))
	for i, b := range kr.blocks {
		cipher.NewCBCDecrypter(b, kr.ivs[i]).CryptBlocks(buf, raw)
		if out, ok := unpad(buf); ok {
			return string(out), nil
		}
	}
	return "", ErrDecrypt
}

// unpad strips PKCS#7 padding.
func unpad(b []byte) ([]byte, bool) {
	n := int(b[len(b)-1])
	if n == 0 || n > aes.BlockSize || n > len(b) {
		return nil, false
	}
	for _, c := range b[len(b)-n:] {
		if int(c) != n {
			return nil, false
		}
	}
	return b[:len(b)-n], true
}
