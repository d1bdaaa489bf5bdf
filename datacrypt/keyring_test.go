package datacrypt

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
	"github.com/caddy-apisix/stream/store"
)

const pemKey = "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\n-----END PRIVATE KEY-----\n"

// TestAPISIXVector checks the cipher against APISIX's documented output:
// with the default keyring, "john-key" is stored as
// "a/TGSySA4i1LGn4ZXlYuew==" (APISIX docs, "Data Encryption").
func TestAPISIXVector(t *testing.T) {
	kr, err := NewKeyring(DefaultKeyring)
	if err != nil {
		t.Fatal(err)
	}
	if got := kr.encrypt("john-key"); got != "a/TGSySA4i1LGn4ZXlYuew==" {
		t.Fatalf("encrypt = %q", got)
	}
	if got, err := kr.Decrypt("a/TGSySA4i1LGn4ZXlYuew=="); err != nil || got != "john-key" {
		t.Fatalf("decrypt = %q, %v", got, err)
	}
}

func TestKeyring(t *testing.T) {
	k256 := "0123456789abcdef0123456789abcdef"
	old, _ := NewKeyring([]string{"edd1c9f0985e76a2"})
	rotated, _ := NewKeyring([]string{k256, "edd1c9f0985e76a2"})
	oldCipher := old.Encrypt(pemKey)
	tests := []struct {
		name    string
		kr      *Keyring
		in      string
		want    string
		wantErr error
	}{
		{"plain PEM passes through", rotated, pemKey, pemKey, nil},
		{"old data with a rotated keyring", rotated, oldCipher, pemKey, nil},
		{"new data with the first key", rotated, rotated.Encrypt(pemKey), pemKey, nil},
		{"not base64", rotated, "!!!", "", ErrBase64},
		{"wrong keys", old, rotated.Encrypt(pemKey), "", ErrDecrypt},
		{"empty keyring keeps values", &Keyring{}, "abc", "abc", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.kr.Decrypt(tt.in)
			if err != tt.wantErr || got != tt.want {
				t.Fatalf("Decrypt = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	if strings.HasPrefix(oldCipher, "---") || oldCipher == pemKey {
		t.Fatal("not encrypted")
	}
	if rotated.Encrypt("$secret://vault/1/key") != "$secret://vault/1/key" {
		t.Fatal("a secret reference must not be encrypted")
	}
	if _, err := NewKeyring([]string{"short"}); err == nil || !strings.Contains(err.Error(), "got 5 bytes") {
		t.Fatalf("short key: %v", err)
	}
}

func TestSealOpen(t *testing.T) {
	kr, _ := NewKeyring(DefaultKeyring)
	q := func(s string) string { return strings.ReplaceAll(s, "\n", `\n`) }
	tests := []struct {
		kind  model.Kind
		value string
		field func(sealed string) bool
	}{
		{model.SSLs, `{"cert":"c","key":"` + q(pemKey) + `","keys":["` + q(pemKey) + `"]}`, nil},
		{model.Upstreams, `{"nodes":{"a:1":1},"tls":{"client_cert":"c","client_key":"` + q(pemKey) + `"}}`, nil},
		{model.StreamRoutes, `{"upstream":{"tls":{"client_key":"` + q(pemKey) + `"}}}`, nil},
		{model.Services, `{"upstream":{"tls":{"client_key":"` + q(pemKey) + `"}}}`, nil},
	}
	for _, tt := range tests {
		sealed, err := kr.Seal(tt.kind, []byte(tt.value))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(sealed), "BEGIN PRIVATE KEY") {
			t.Errorf("%s: key left in clear: %s", tt.kind, sealed)
		}
		opened, err := kr.Open(tt.kind, sealed)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := model.DecodeObject(opened)
		b, _ := model.DecodeObject([]byte(tt.value))
		if string(mustJSON(a)) != string(mustJSON(b)) {
			t.Errorf("%s: round trip\n%s\n%s", tt.kind, opened, tt.value)
		}
	}
	plain := []byte(`{"nodes":{"a:1":1}}`)
	if out, _ := kr.Seal(model.Upstreams, plain); string(out) != string(plain) {
		t.Error("a value without keys must keep its bytes")
	}
	if _, err := kr.Open(model.SSLs, []byte(`{"key":"bm90IGEga2V5"}`)); err == nil || !strings.Contains(err.Error(), "key: decrypt ssl key failed") {
		t.Errorf("bad key: %v", err)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func FuzzDecrypt(f *testing.F) {
	kr, _ := NewKeyring(DefaultKeyring)
	f.Add("a/TGSySA4i1LGn4ZXlYuew==")
	f.Add(pemKey)
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		out, err := kr.Decrypt(s)
		if err == nil && !strings.HasPrefix(s, "---") {
			if again, _ := kr.Decrypt(kr.encrypt(out)); again != out {
				t.Fatalf("round trip of %q", out)
			}
		}
	})
}

func TestAtRest(t *testing.T) {
	kr, _ := NewKeyring(DefaultKeyring)
	mem := store.NewMemory()
	st := AtRest(mem, kr, nil, nil)
	v := `{"cert":"c","key":"` + strings.ReplaceAll(pemKey, "\n", `\n`) + `"}`
	if err := st.Put(&registry.Object{Kind: model.SSLs, ID: "1", Value: []byte(v), CreatedIndex: 1, ModifiedIndex: 1}); err != nil {
		t.Fatal(err)
	}
	if raw := mem.Get(model.SSLs, "1"); strings.Contains(string(raw.Value), "BEGIN") {
		t.Fatalf("stored in clear: %s", raw.Value)
	}
	objs, _, err := st.Load()
	if err != nil || len(objs) != 1 || !strings.Contains(string(objs[0].Value), "BEGIN PRIVATE KEY") {
		t.Fatalf("Load = %v, %v", objs, err)
	}
}

// TestAtRestWrongKeyring: an object whose key does not decrypt is skipped
// and counted in apisix_store_unreadable_objects.
func TestAtRestWrongKeyring(t *testing.T) {
	kr, _ := NewKeyring(DefaultKeyring)
	other, _ := NewKeyring([]string{"0123456789abcdef0123456789abcdef"})
	mem := store.NewMemory()
	v := `{"cert":"c","key":"` + strings.ReplaceAll(pemKey, "\n", `\n`) + `"}`
	if err := AtRest(mem, kr, nil, nil).Put(&registry.Object{Kind: model.SSLs, ID: "1", Value: []byte(v), CreatedIndex: 1, ModifiedIndex: 1}); err != nil {
		t.Fatal(err)
	}
	m := store.NewMetrics()
	objs, _, err := AtRest(mem, other, m, nil).Load()
	if err != nil || len(objs) != 0 {
		t.Fatalf("Load = %v, %v; want the object skipped", objs, err)
	}
	if got := testutil.ToFloat64(m); got != 1 {
		t.Fatalf("apisix_store_unreadable_objects = %v, want 1", got)
	}
}
