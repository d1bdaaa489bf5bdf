//go:build linux

package pluginse2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// broker is a real mosquitto on a loopback port, logging each client it
// accepts ("New client connected from … as <id>") to stderr, which is
// unbuffered.
type broker struct {
	port int
	proc *e2e.Proc
}

func startBroker(t *testing.T) *broker {
	t.Helper()
	bin := need(t, "mosquitto", "mosquitto")
	dir := t.TempDir()
	b := &broker{port: e2e.FreePort(t)}
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type all\nconnection_messages true\n", b.port)
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path)
	cmd.Dir = dir
	b.proc = e2e.Start(t, "mosquitto", cmd, e2e.Options{})
	b.proc.WaitReady(20*time.Second, func() error {
		c, err := net.Dial("tcp", e2e.HostPort("127.0.0.1", b.port))
		if err != nil {
			return err
		}
		return c.Close()
	})
	return b
}

func (b *broker) addr() string { return e2e.HostPort("127.0.0.1", b.port) }

// connected counts the connections of client id the broker accepted.
func (b *broker) connected(id string) int {
	return strings.Count(b.proc.Output(), " as "+id+" (")
}

// connectedOn returns how often each of two brokers saw id connect, once
// they saw it want times together or after 10 s: a broker logs a
// connection a moment after the client that made it has exited.
func connectedOn(b1, b2 *broker, id string, want int) (n1, n2 int) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		n1, n2 = b1.connected(id), b2.connected(id)
		if n1+n2 >= want || time.Now().After(deadline) {
			return n1, n2
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mqttRun runs a mosquitto client binary with args against 127.0.0.1:port
// and returns its combined output and exit error; bounded by 30 s.
func mqttRun(t *testing.T, bin string, port int, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args = append([]string{"-h", "127.0.0.1", "-p", fmt.Sprint(port)}, args...)
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

// subscriber is a mosquitto_sub waiting for count messages.
type subscriber struct {
	proc *e2e.Proc
}

// subscribe starts mosquitto_sub on port for topic, ready once broker b
// got its SUBSCRIBE.
func subscribe(t *testing.T, b *broker, port int, version, id, topic string, count int) *subscriber {
	t.Helper()
	bin := need(t, "mosquitto_sub", "mosquitto-clients")
	cmd := exec.Command(bin, "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-V", version, "-i", id,
		"-t", topic, "-C", fmt.Sprint(count), "-W", "30")
	s := &subscriber{proc: e2e.Start(t, "mosquitto_sub "+id, cmd, e2e.Options{})}
	s.proc.WaitReady(20*time.Second, func() error {
		if !strings.Contains(b.proc.Output(), "Received SUBSCRIBE from "+id+"\n") {
			return fmt.Errorf("the broker has no SUBSCRIBE from %s yet", id)
		}
		return nil
	})
	return s
}

// messages waits for mosquitto_sub to exit and returns the payloads it
// printed.
func (s *subscriber) messages(t *testing.T) []string {
	t.Helper()
	select {
	case <-s.proc.Done():
	case <-time.After(40 * time.Second):
		t.Fatalf("mosquitto_sub never exited:\n%s", s.proc.Output())
	}
	var msgs []string
	for _, l := range strings.Split(s.proc.Output(), "\n") {
		if l != "" {
			msgs = append(msgs, l)
		}
	}
	return msgs
}

// connections counts every client connection the broker accepted.
func (b *broker) connections() int {
	return strings.Count(b.proc.Output(), "New connection from ")
}
