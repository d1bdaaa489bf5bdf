package model

import (
	"strings"
	"testing"
)

func TestCheckSSL(t *testing.T) {
	testCerts(t)
	rc, rk := js(rsaPair.cert), js(rsaPair.key)
	ec, ek := js(ecPair.cert), js(ecPair.key)
	ok := js(otherPair.key)
	garbage := js(strings.Repeat("B", 200))
	badPEM := js("-----BEGIN PRIVATE KEY-----\n" + strings.Repeat("C", 100) + "\n-----END PRIVATE KEY-----\n")
	// A certificate block preceded by its key: OpenSSL skips other blocks.
	keyFirst := js(ecPair.key + ecPair.cert)
	cases := []struct {
		name, body, want string
	}{
		{"rsa server", `{"cert":` + rc + `,"key":` + rk + `,"sni":"rsa.test"}`, ""},
		{"ecdsa snis", `{"cert":` + ec + `,"key":` + ek + `,"snis":["ec.test","*.ec.test"]}`, ""},
		{"pkcs8 key first", `{"cert":` + keyFirst + `,"key":` + ek + `,"sni":"*"}`, ""},
		{"client type", `{"type":"client","cert":` + ec + `,"key":` + ek + `}`, ""},
		{"extras", `{"id":"1","desc":"d","labels":{"a":"b"},"cert":` + rc + `,"key":` + rk + `,"sni":"a.com",
			"certs":[` + ec + `],"keys":[` + ek + `],"client":{"ca":` + rc + `,"depth":2},"status":0,"ssl_protocols":["TLSv1.2","TLSv1.3"]}`, ""},
		{"secret refs", `{"cert":"$secret://vault/1/cert","key":"$ENV://KEY","sni":"a.com"}`, ""},
		{"server no sni", `{"cert":` + rc + `,"key":` + rk + `}`, "invalid configuration: then clause did not match"},
		{"server sni and snis", `{"cert":` + rc + `,"key":` + rk + `,"sni":"a.com","snis":["b.com"]}`, "invalid configuration: then clause did not match"},
		{"server no key", `{"type":"server","cert":` + rc + `,"sni":"a.com"}`, "invalid configuration: then clause did not match"},
		{"client no key", `{"type":"client","cert":` + rc + `}`, "invalid configuration: else clause did not match"},
		{"type enum", `{"type":"x","cert":` + rc + `,"key":` + rk + `}`, `invalid configuration: property "type" validation failed: matches none of the enum values`},
		{"additional", `{"name":"x","cert":` + rc + `,"key":` + rk + `,"sni":"a.com"}`, "invalid configuration: additional properties forbidden, found name"},
		{"snis empty", `{"cert":` + rc + `,"key":` + rk + `,"snis":[]}`, `invalid configuration: property "snis" validation failed: expect array to have at least 1 items`},
		{"sni pattern", `{"cert":` + rc + `,"key":` + rk + `,"sni":"a b"}`, `invalid configuration: property "sni" validation failed: failed to match pattern ` + hostPatQ + ` with "a b"`},
		{"cert short", `{"cert":"short","key":` + rk + `,"sni":"a.com"}`, `invalid configuration: property "cert" validation failed: value should match only one schema, but matches none`},
		{"status enum", `{"cert":` + rc + `,"key":` + rk + `,"sni":"a.com","status":2}`, `invalid configuration: property "status" validation failed: matches none of the enum values`},
		{"protocols enum", `{"cert":` + rc + `,"key":` + rk + `,"sni":"a.com","ssl_protocols":["TLSv1.0"]}`, `invalid configuration: property "ssl_protocols" validation failed: failed to validate item 1: matches none of the enum values`},
		{"protocols many", `{"cert":` + rc + `,"key":` + rk + `,"sni":"a.com","ssl_protocols":["TLSv1.1","TLSv1.2","TLSv1.3","TLSv1.3"]}`, `invalid configuration: property "ssl_protocols" validation failed: expect array to have at most 3 items`},
		{"protocols unique", `{"cert":` + rc + `,"key":` + rk + `,"sni":"a.com","ssl_protocols":["TLSv1.2","TLSv1.2"]}`, `invalid configuration: property "ssl_protocols" validation failed: expected unique items but items 1 and 2 are equal`},
		{"client no ca", `{"cert":` + rc + `,"key":` + rk + `,"sni":"a.com","client":{}}`, `invalid configuration: property "client" validation failed: property "ca" is required`},
		{"client depth", `{"cert":` + rc + `,"key":` + rk + `,"sni":"a.com","client":{"ca":` + rc + `,"depth":-1}}`, `invalid configuration: property "client" validation failed: property "depth" validation failed: expected -1 to be at least 0`},
		{"bad cert", `{"cert":` + garbage + `,"key":` + rk + `,"sni":"a.com"}`, "failed to parse cert: PEM_read_bio_X509_AUX() failed"},
		{"bad key", `{"cert":` + rc + `,"key":` + badPEM + `,"sni":"a.com"}`, "failed to parse key: PEM_read_bio_PrivateKey() failed"},
		{"not pem key", `{"cert":` + rc + `,"key":` + garbage + `,"sni":"a.com"}`, "failed to decrypt previous encrypted key"},
		{"key for other cert", `{"cert":` + ec + `,"key":` + ok + `,"sni":"a.com"}`, errKeyMismatch},
		{"rsa key for ec cert", `{"cert":` + ec + `,"key":` + rk + `,"sni":"a.com"}`, errKeyMismatch},
		{"certs keys count", `{"cert":` + rc + `,"key":` + rk + `,"sni":"a.com","certs":[` + ec + `]}`, "mismatched number of certs and keys"},
		{"pair bad key", `{"cert":` + rc + `,"key":` + rk + `,"sni":"a.com","certs":[` + ec + `],"keys":[` + badPEM + `]}`, "failed to handle cert-key pair[1]: failed to parse key: PEM_read_bio_PrivateKey() failed"},
		{"pair encrypted key", `{"cert":` + rc + `,"key":` + rk + `,"sni":"a.com","certs":[` + ec + `],"keys":[` + garbage + `]}`, "failed to handle cert-key pair[1]: failed to decrypt previous encrypted key"},
		{"pair 2 bad cert", `{"cert":` + rc + `,"key":` + rk + `,"sni":"a.com","certs":[` + ec + `,` + garbage + `],"keys":[` + ek + `,` + rk + `]}`, "failed to handle cert-key pair[2]: failed to parse cert: PEM_read_bio_X509_AUX() failed"},
		{"client skips pairs", `{"type":"client","cert":` + rc + `,"key":` + rk + `,"certs":[` + ec + `]}`, ""},
		{"bad ca", `{"cert":` + rc + `,"key":` + rk + `,"sni":"a.com","client":{"ca":` + garbage + `}}`, "failed to validate client_cert: failed to parse cert: PEM_read_bio_X509_AUX() failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, CheckSSL(decode(t, c.body)), c.want)
		})
	}
}

func TestCheckSSLDefaults(t *testing.T) {
	testCerts(t)
	obj := decode(t, `{"cert":`+js(rsaPair.cert)+`,"key":`+js(rsaPair.key)+`,"sni":"a.com","client":{"ca":`+js(rsaPair.cert)+`}}`)
	wantErr(t, CheckSSL(obj), "")
	if obj["type"] != "server" || obj["status"] != jsonNum(1) {
		t.Fatalf("defaults not stored: type=%v status=%v", obj["type"], obj["status"])
	}
	if obj["client"].(map[string]any)["depth"] != jsonNum(1) {
		t.Fatalf("client.depth default missing: %v", obj["client"])
	}
}
