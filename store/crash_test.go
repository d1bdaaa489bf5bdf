package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// crashEnv, when set to a directory, turns the test binary into the
// crash test's writer process (see TestMain).
const crashEnv = "STORE_CRASH_TEST_DIR"

// crashOps bounds the writer's operations; the parent kills it long before.
const crashOps = 3000

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashEnv); dir != "" {
		os.Exit(crashWriter(dir))
	}
	os.Exit(m.Run())
}

// crashWriter applies crashOps operations to a store in dir, printing
// "ack <i>" after operation i returned nil. It runs in a child process
// that the parent kills with SIGKILL.
func crashWriter(dir string) int {
	s := New(&certmagic.FileStorage{Path: dir}, "")
	var st crashState
	out := bufio.NewWriterSize(os.Stdout, 64)
	for i := 1; i <= crashOps; i++ {
		if err := st.apply(s, i); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// One short write per line: the parent sees whole lines only.
		fmt.Fprintf(out, "ack %d\n", i)
		if err := out.Flush(); err != nil {
			return 1
		}
	}
	return 0
}

// crashState models the store after a sequence of operations.
type crashState struct {
	objs    map[string]*registry.Object // by kind/id
	counter int64
}

// apply performs operation i on st and, if s is not nil, on s first.
// Operations mix counter saves, puts (new and overwriting) and deletes of
// values of varying size, on all kinds, in a fixed sequence.
func (st *crashState) apply(s registry.Store, i int) error {
	if st.objs == nil {
		st.objs = map[string]*registry.Object{}
	}
	kinds := []model.Kind{model.StreamRoutes, model.Upstreams, model.SSLs}
	kind := kinds[i%len(kinds)]
	id := strconv.Itoa(i % 29)
	key := string(kind) + "/" + id
	switch {
	case i%4 == 0:
		if s != nil {
			if err := s.SaveCounter(int64(i)); err != nil {
				return err
			}
		}
		st.counter = int64(i)
	case i%7 == 0:
		if s != nil {
			if err := s.Delete(kind, id); err != nil {
				return err
			}
		}
		delete(st.objs, key)
	default:
		o := &registry.Object{
			Kind:          kind,
			ID:            id,
			Value:         fmt.Appendf(nil, `{"id":%q,"n":%d,"pad":%q}`, id, i, strings.Repeat("x", i*131%5000)),
			CreatedIndex:  int64(i),
			ModifiedIndex: int64(i),
		}
		if prev := st.objs[key]; prev != nil {
			o.CreatedIndex = prev.CreatedIndex
		}
		if s != nil {
			if err := s.Put(o); err != nil {
				return err
			}
		}
		st.objs[key] = o
	}
	return nil
}

// equal reports whether st holds exactly objs and counter.
func (st *crashState) equal(objs []*registry.Object, counter int64) bool {
	if counter != st.counter || len(objs) != len(st.objs) {
		return false
	}
	for _, o := range objs {
		want := st.objs[string(o.Kind)+"/"+o.ID]
		if want == nil || !bytes.Equal(o.Value, want.Value) || o.CreatedIndex != want.CreatedIndex || o.ModifiedIndex != want.ModifiedIndex {
			return false
		}
	}
	return true
}

// TestCrashSafety kills a writer process with SIGKILL at random points and
// checks that the store then holds every acknowledged write: the state
// after the last acknowledged operation, or after the one in flight.
func TestCrashSafety(t *testing.T) {
	const rounds = 8
	for round := range rounds {
		t.Run(strconv.Itoa(round), func(t *testing.T) {
			dir := t.TempDir()
			acked := runCrashWriter(t, dir, 1+rand.IntN(400))

			s := New(&certmagic.FileStorage{Path: dir}, "")
			objs, counter, skipped, err := s.Scan()
			if err != nil {
				t.Fatal(err)
			}
			for _, sk := range skipped {
				if !errors.Is(sk, errTemp) {
					t.Errorf("damaged entry after the crash: %v", sk)
				}
			}
			var st crashState
			for i := 1; i <= acked; i++ {
				_ = st.apply(nil, i)
			}
			ok := st.equal(objs, counter)
			if !ok && acked < crashOps {
				inFlight := crashState{objs: maps.Clone(st.objs), counter: st.counter}
				_ = inFlight.apply(nil, acked+1)
				ok = inFlight.equal(objs, counter)
			}
			if !ok {
				t.Fatalf("after %d acknowledged operations, loaded counter %d and\n%s", acked, counter, dump(objs))
			}

			// The store keeps working after the crash.
			extra := obj(model.Upstreams, "after-crash", int64(acked+10), `{"ok":true}`)
			if err := s.Put(extra); err != nil {
				t.Fatal(err)
			}
			before := len(objs)
			objs, _, err = New(&certmagic.FileStorage{Path: dir}, "").Load()
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) != before+1 {
				t.Fatalf("loaded %d objects after the restart, want %d", len(objs), before+1)
			}
			found := false
			for _, o := range objs {
				found = found || o.ID == extra.ID && bytes.Equal(o.Value, extra.Value)
			}
			if !found {
				t.Fatal("write after the restart lost")
			}
		})
	}
}

// runCrashWriter starts the writer on dir, kills it with SIGKILL once it
// acknowledged killAfter operations, and returns the number of operations
// it acknowledged in all.
func runCrashWriter(t *testing.T, dir string, killAfter int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked, killed := 0, false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() { // ends at EOF: the writer exited or was killed
		n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "ack "))
		if err != nil || n != acked+1 {
			t.Errorf("writer printed %q after ack %d", sc.Text(), acked)
			break
		}
		acked = n
		if acked >= killAfter && !killed {
			// A random pause moves the kill to any point of the
			// following operations.
			time.Sleep(rand.N(3 * time.Millisecond))
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		t.Fatalf("writer timed out after %d operations", acked)
	}
	switch {
	case killed && cmd.ProcessState.ExitCode() == -1:
	case err == nil && acked == crashOps:
		// The writer finished before the kill landed: still a valid round.
	default:
		t.Fatalf("writer failed (acked %d, wait: %v, stderr: %s)", acked, err, stderr.String())
	}
	t.Logf("writer killed after acknowledging %d operations (target %d)", acked, killAfter)
	return acked
}
