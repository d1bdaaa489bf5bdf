//go:build linux

package realclients

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// bigTXT is the number of TXT records of big.test: with 100-byte texts
// the answer is about 3.5 KB, far over DNS's classic 512-byte UDP limit
// and under the 4096 bytes the client advertises with EDNS0.
const bigTXT = 30

// txtText is the text of big.test's i-th TXT record, 100 bytes.
func txtText(i int) string {
	head := fmt.Sprintf("record-%02d-", i)
	return head + strings.Repeat(string(rune('a'+i%26)), 100-len(head))
}

// dnsmasq is one dnsmasq process answering bench.test with its own
// address and big.test with bigTXT TXT records, logging every query.
type dnsmasq struct {
	*e2e.Proc
	port int
	log  string
}

// startDnsmasq runs dnsmasq on 127.0.0.1:port (UDP and TCP) in the
// foreground with no upstream resolvers and no hosts file.
func (n *netns) startDnsmasq(port int, answer string) *dnsmasq {
	n.t.Helper()
	need(n.t, "dnsmasq", "dig")
	dir := n.t.TempDir()
	d := &dnsmasq{port: port, log: filepath.Join(dir, "queries.log")}
	args := []string{"--no-daemon", "--conf-file=/dev/null", "--pid-file=", "--user=root",
		"--port=" + strconv.Itoa(port), "--listen-address=127.0.0.1", "--bind-interfaces",
		"--no-resolv", "--no-hosts", "--edns-packet-max=4096",
		"--log-queries", "--log-facility=" + d.log,
		"--address=/bench.test/" + answer}
	for i := range bigTXT {
		args = append(args, "--txt-record=big.test,"+txtText(i))
	}
	d.Proc = n.start("dnsmasq", args...)
	d.WaitReady(startWait, func() error {
		got := n.dig("127.0.0.1", port, "bench.test", "A", "+short")
		if got.err != nil || strings.TrimSpace(got.stdout) != answer {
			return fmt.Errorf("dig: %v %q", got.err, got.combined())
		}
		return nil
	})
	return d
}

// queries counts the A queries for bench.test dnsmasq logged.
func (d *dnsmasq) queries(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile(d.log)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "query[A] bench.test from ")
}

// dig asks server:port one question over UDP, one try, bounded.
func (n *netns) dig(server string, port int, name, qtype string, opts ...string) result {
	args := append([]string{"@" + server, "-p", strconv.Itoa(port), name, qtype, "+tries=1", "+time=3"}, opts...)
	return n.run("", "dig", args...)
}

var (
	digFlags   = regexp.MustCompile(`(?m)^;; flags: ([a-z ]*); QUERY: \d+, ANSWER: (\d+),`)
	digSize    = regexp.MustCompile(`(?m)^;; MSG SIZE\s+rcvd: (\d+)`)
	digTXT     = regexp.MustCompile(`(?m)^big\.test\.\s+\d+\s+IN\s+TXT\s+"([^"]*)"$`)
	digEDNSBuf = regexp.MustCompile(`(?m)^; EDNS: version: 0, flags:; udp: (\d+)`)
)

// TestDNSOverUDP sends dig's questions through a UDP stream route to two
// dnsmasq upstreams: answers arrive, roundrobin reaches both, and a 3.5 KB
// EDNS0 answer arrives whole in one datagram.
func TestDNSOverUDP(t *testing.T) {
	need(t, "dnsmasq", "dig")
	logVersion(t, "dnsmasq", "--version")
	logVersion(t, "dig", "-v")
	n := newNetns(t)
	d1, d2 := n.startDnsmasq(5301, "127.0.0.7"), n.startDnsmasq(5302, "127.0.0.8")
	c := n.startCaddy(obj{"stream_proxy": obj{"udp": []any{9200}}})
	c.put(t, "stream_routes/dns", obj{"server_port": 9200,
		"upstream": upstream(hostPort("127.0.0.1", d1.port), hostPort("127.0.0.1", d2.port))})

	t.Run("roundrobin over two dnsmasq", func(t *testing.T) {
		before1, before2 := d1.queries(t), d2.queries(t)
		const asks = 8 // each dig is a new socket, so a new UDP session
		answers := map[string]int{}
		for range asks {
			r := n.dig("127.0.0.1", 9200, "bench.test", "A", "+short")
			if r.err != nil {
				t.Fatalf("dig through the proxy: %v\n%s", r.err, r.combined())
			}
			answers[strings.TrimSpace(r.stdout)]++
		}
		if answers["127.0.0.7"]+answers["127.0.0.8"] != asks || answers["127.0.0.7"] == 0 || answers["127.0.0.8"] == 0 {
			t.Fatalf("answers %v, want both 127.0.0.7 and 127.0.0.8 and nothing else", answers)
		}
		q1, q2 := d1.queries(t)-before1, d2.queries(t)-before2
		if q1 != answers["127.0.0.7"] || q2 != answers["127.0.0.8"] {
			t.Fatalf("dnsmasq logged %d and %d queries, answers were %v", q1, q2, answers)
		}
		t.Logf("answers %v", answers)
	})

	t.Run("EDNS0 answer over 512 bytes arrives whole", func(t *testing.T) {
		r := n.dig("127.0.0.1", 9200, "big.test", "TXT", "+bufsize=4096", "+ignore")
		if r.err != nil {
			t.Fatalf("dig: %v\n%s", r.err, r.combined())
		}
		flags := digFlags.FindStringSubmatch(r.stdout)
		size := digSize.FindStringSubmatch(r.stdout)
		if flags == nil || size == nil {
			t.Fatalf("no flags or size in dig's output:\n%s", r.stdout)
		}
		if strings.Contains(" "+flags[1]+" ", " tc ") {
			t.Fatalf("the answer is truncated (flags %q):\n%s", flags[1], r.stdout)
		}
		if flags[2] != strconv.Itoa(bigTXT) {
			t.Fatalf("ANSWER: %s, want %d", flags[2], bigTXT)
		}
		if n, _ := strconv.Atoi(size[1]); n <= 512 {
			t.Fatalf("MSG SIZE rcvd: %d, want over 512", n)
		}
		if m := digEDNSBuf.FindStringSubmatch(r.stdout); m == nil {
			t.Fatalf("no EDNS0 OPT record in the answer:\n%s", r.stdout)
		}
		texts := map[string]bool{}
		for _, m := range digTXT.FindAllStringSubmatch(r.stdout, -1) {
			texts[m[1]] = true
		}
		for i := range bigTXT {
			if !texts[txtText(i)] {
				t.Fatalf("TXT record %q missing from:\n%s", txtText(i), r.stdout)
			}
		}
		t.Logf("%d TXT records, %s bytes, flags %q", bigTXT, size[1], flags[1])
	})
}
