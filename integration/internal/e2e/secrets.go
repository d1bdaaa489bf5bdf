//go:build linux

package e2e

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Secrets every Caddy process of a test run must keep out of its output:
// the admin keys and every private key the e2e helpers generate. Main
// checks the output of every "caddy" process Start ran, once the tests
// are done, and fails the run on a leak.
var secrets struct {
	mu     sync.Mutex
	values map[string]string // value -> what it is
	procs  []*Proc
}

// NoteSecret records a value (an admin key, a private key) that no Caddy
// process may print. A PEM value is recorded line by line, as a log line
// escapes its newlines.
func NoteSecret(what, value string) {
	secrets.mu.Lock()
	defer secrets.mu.Unlock()
	if secrets.values == nil {
		secrets.values = map[string]string{}
	}
	if !strings.Contains(value, "-----BEGIN") {
		secrets.values[value] = what
		return
	}
	for _, line := range strings.Split(value, "\n") {
		if len(line) >= 32 && !strings.HasPrefix(line, "-----") {
			secrets.values[line] = what
		}
	}
}

func noteProc(p *Proc) {
	secrets.mu.Lock()
	defer secrets.mu.Unlock()
	secrets.procs = append(secrets.procs, p)
}

// LeakedSecrets returns one line per Caddy process output and recorded
// secret that it holds, naming the secret, never showing it.
func LeakedSecrets() []string {
	secrets.mu.Lock()
	defer secrets.mu.Unlock()
	var out []string
	for _, p := range secrets.procs {
		if p.Name != "caddy" {
			continue
		}
		log := p.Output()
		seen := map[string]bool{}
		for v, what := range secrets.values {
			if !seen[what] && strings.Contains(log, v) {
				seen[what] = true
				out = append(out, fmt.Sprintf("caddy pid %d printed %s", p.PID(), what))
			}
		}
	}
	sort.Strings(out)
	return out
}

func init() { NoteSecret("the admin key e2e.AdminKey", AdminKey) }
