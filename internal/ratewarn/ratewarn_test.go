package ratewarn

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	var w Limiter
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at     time.Duration
		warn   bool
		events int64
	}{
		{0, true, 1},
		{time.Second, false, 0},
		{2 * time.Second, false, 0},
		{Every, true, 2 + 1},
		{Every + time.Second, false, 0},
		{3 * Every, true, 2},
	}
	for i, s := range steps {
		n, ok := w.Allow(t0.Add(s.at))
		if ok != s.warn || n != s.events {
			t.Errorf("step %d: allow = %d, %v; want %d, %v", i, n, ok, s.events, s.warn)
		}
	}
}
