//go:build linux

package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// counters are the harness's tallies; every field is updated atomically
// by the workers.
type counters struct {
	streams, streamBytes, streamCorrupt, streamDropped           atomic.Int64
	shortOK, shortFailed, shortCorrupt                           atomic.Int64
	udpSent, udpAnswered, udpLost, udpCorrupt                    atomic.Int64
	adminAcked, adminRefused, adminErrors                        atomic.Int64
	changes                                                      [4]atomic.Int64 // stream_routes, upstreams, services, ssls
	adminLost                                                    atomic.Int64
	reloads, reloadFailed, extraChecks, extraNotUp, extraStillUp atomic.Int64
	// reloadRetried counts reloads sent again after their connection was
	// closed or reset unanswered
	reloadRetried atomic.Int64
	// lastReloadFailure is the answer to the last failed reload
	lastReloadFailure                                             atomic.Value
	badInputs, bad5xx, badErrors                                  atomic.Int64
	badErrKinds                                                   [len(transportErrKinds)]atomic.Int64
	badErrNearReload                                              atomic.Int64
	lastReload                                                    atomic.Int64    // Unix ns when the last POST /load began
	faults                                                        [4]atomic.Int64 // reset, never-reading, blackhole, slow
	faultHung                                                     atomic.Int64
	kills, crashAcked, crashVerified, crashLost                   atomic.Int64
	fdRounds, fdRecovered, fdCrashed, fdPeak                      atomic.Int64
	fdCPUTicks, fdExhaustedNs                                     atomic.Int64
	sweepPorts, sweepSent, sweepAnswered                          atomic.Int64
	diskAcked, disk503, diskOther, diskTrafficFailed              atomic.Int64
	diskVerified, diskLost                                        atomic.Int64
	panics                                                        atomic.Int64
	etcdKills, etcdAcked, etcdWriteFailed, etcdVerified, etcdLost atomic.Int64
	etcdConnOK, etcdConnFailed                                    atomic.Int64
	capRounds, capHeld, capHeldFailed, capRefused, capServed      atomic.Int64
	capHung, capMetric, capMetricWrong, capNotRecovered, capWarns atomic.Int64
	// the same for the UDP session cap (udpCapLoop)
	udpCapRounds, udpCapHeld, udpCapHeldFailed, udpCapRefused, udpCapServed atomic.Int64
	udpCapMetric, udpCapMetricWrong, udpCapNotRecovered, udpCapWarns        atomic.Int64
	connectLat, adminLat                                                    latencies
}

// latencies collects samples, at most 1,000,000.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	if len(l.d) < 1_000_000 {
		l.d = append(l.d, d)
	}
	l.mu.Unlock()
}

// quantile is the q-quantile of the samples (0 without any).
func (l *latencies) quantile(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}

// procStats are a process's resident set size, split into anonymous
// memory (what it allocated) and file pages (its executable's code and
// data paged in as code paths first run, shared with the page cache and
// reclaimable), its OS threads and its open descriptors.
type procStats struct {
	rssKiB, anonKiB, fileKiB, threads, fds int
}

// statsOf reads them, and saves the process's memory map with each
// mapping's resident, anonymous and huge pages (/proc/PID/smaps) as
// dir/name.smaps when dir is not "": what grew is read from their
// difference.
func statsOf(pid int, dir, name string) procStats {
	var s procStats
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid)); err == nil && dir != "" {
		_ = os.WriteFile(filepath.Join(dir, name+".smaps"), b, 0o644)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			switch f[0] {
			case "VmRSS:":
				s.rssKiB, _ = strconv.Atoi(f[1])
			case "RssAnon:":
				s.anonKiB, _ = strconv.Atoi(f[1])
			case "RssFile:":
				s.fileKiB, _ = strconv.Atoi(f[1])
			case "Threads:":
				s.threads, _ = strconv.Atoi(f[1])
			}
		}
	}
	if ents, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd")); err == nil {
		s.fds = len(ents)
	}
	return s
}

// table is the run's one table.
func (c *counters) table(d time.Duration, sd int64, start, base, end procStats, baseMem, endMem goMem) string {
	var b strings.Builder
	row := func(group, what string, v any) { fmt.Fprintf(&b, "| %-8s | %-64s | %14v |\n", group, what, v) }
	fmt.Fprintf(&b, "soak: duration %v after a warm-up of %v (its load counted too), seed %d\n", d, *warmup, sd)
	fmt.Fprintf(&b, "| %-8s | %-64s | %14s |\n|%s|%s|%s|\n", "", "", "", strings.Repeat("-", 10), strings.Repeat("-", 66), strings.Repeat("-", 16))
	row("load", "long-lived TCP streams (checksummed both ways)", c.streams.Load())
	row("load", "bytes echoed through them and verified", c.streamBytes.Load())
	row("load", "short TCP connections served (echo verified)", c.shortOK.Load())
	row("load", "short TCP connections failed", c.shortFailed.Load())
	row("load", "UDP datagrams sent / answered", fmt.Sprintf("%d / %d", c.udpSent.Load(), c.udpAnswered.Load()))
	row("load", "UDP datagrams unanswered within 1 s", c.udpLost.Load())
	row("load", "UDP sweep: distinct source ports / datagrams sent / answered", fmt.Sprintf("%d / %d / %d", c.sweepPorts.Load(), c.sweepSent.Load(), c.sweepAnswered.Load()))
	row("churn", "acknowledged Admin API writes (PUT/DELETE, main gateway)", c.adminAcked.Load())
	row("churn", "  stream_routes / upstreams / services / ssls changes", fmt.Sprintf("%d/%d/%d/%d", c.changes[0].Load(), c.changes[1].Load(), c.changes[2].Load(), c.changes[3].Load()))
	row("churn", "Admin API writes refused (4xx, e.g. in use) / transport errors", fmt.Sprintf("%d / %d", c.adminRefused.Load(), c.adminErrors.Load()))
	row("churn", "reloads (POST /load adding or removing a listener) / failed", fmt.Sprintf("%d / %d", c.reloads.Load(), c.reloadFailed.Load()))
	row("churn", "  sent again after their connection was dropped unanswered", c.reloadRetried.Load())
	row("churn", "reloaded listener checks / not up after add / up after remove", fmt.Sprintf("%d / %d / %d", c.extraChecks.Load(), c.extraNotUp.Load(), c.extraStillUp.Load()))
	row("faults", "upstream resets / never-reading / blackhole / slow", fmt.Sprintf("%d/%d/%d/%d", c.faults[0].Load(), c.faults[1].Load(), c.faults[2].Load(), c.faults[3].Load()))
	row("faults", "fault connections the gateway left hanging (> 15 s)", c.faultHung.Load())
	row("faults", "kill -9 + restart (crash gateway, under Admin API writes)", c.kills.Load())
	row("faults", "fd exhaustion rounds (RLIMIT_NOFILE 128) / recovered", fmt.Sprintf("%d / %d", c.fdRounds.Load(), c.fdRecovered.Load()))
	row("faults", "fd gateway crashed / peak client conns held open", fmt.Sprintf("%d / %d", c.fdCrashed.Load(), c.fdPeak.Load()))
	exhausted := time.Duration(c.fdExhaustedNs.Load())
	cpu := time.Duration(c.fdCPUTicks.Load()) * 10 * time.Millisecond // USER_HZ 100
	cpuShare := 0.0
	if exhausted > 0 {
		cpuShare = 100 * cpu.Seconds() / exhausted.Seconds()
	}
	row("faults", "fd gateway CPU while exhausted: CPU s / wall s (% of a core)", fmt.Sprintf("%.2f / %.0f (%.1f%%)", cpu.Seconds(), exhausted.Seconds(), cpuShare))
	row("faults", fmt.Sprintf("TCP cap %d (tcp_max_connections): rounds / held served / failed", capConns), fmt.Sprintf("%d / %d / %d", c.capRounds.Load(), c.capHeld.Load(), c.capHeldFailed.Load()))
	row("faults", fmt.Sprintf("  %d beyond it per round: closed / served / left open", capExtras), fmt.Sprintf("%d / %d / %d", c.capRefused.Load(), c.capServed.Load(), c.capHung.Load()))
	row("faults", "  refused_total{tcp_max_connections} growth / rounds off by any", fmt.Sprintf("%d / %d", c.capMetric.Load(), c.capMetricWrong.Load()))
	row("faults", "  WARNs logged (rate-limited) / rounds not served again after", fmt.Sprintf("%d / %d", c.capWarns.Load(), c.capNotRecovered.Load()))
	row("faults", fmt.Sprintf("UDP cap %d (udp_max_sessions): rounds / held served / failed", capConns), fmt.Sprintf("%d / %d / %d", c.udpCapRounds.Load(), c.udpCapHeld.Load(), c.udpCapHeldFailed.Load()))
	row("faults", fmt.Sprintf("  %d new sources beyond it per round: unanswered / answered", capExtras), fmt.Sprintf("%d / %d", c.udpCapRefused.Load(), c.udpCapServed.Load()))
	row("faults", "  refused_total{udp_max_sessions} growth / rounds off by any", fmt.Sprintf("%d / %d", c.udpCapMetric.Load(), c.udpCapMetricWrong.Load()))
	row("faults", "  WARNs logged (rate-limited) / rounds not served again after", fmt.Sprintf("%d / %d", c.udpCapWarns.Load(), c.udpCapNotRecovered.Load()))
	row("faults", "full disk (512 KiB tmpfs): writes acknowledged / 503 full / other", fmt.Sprintf("%d / %d / %d", c.diskAcked.Load(), c.disk503.Load(), c.diskOther.Load()))
	row("faults", "full disk: traffic failures while full", c.diskTrafficFailed.Load())
	row("faults", "etcd member kill -9 + restart (3 members, etcd mode)", c.etcdKills.Load())
	row("faults", "  etcd mode: writes acknowledged / failed (5xx) / conns ok / failed", fmt.Sprintf("%d / %d / %d / %d", c.etcdAcked.Load(), c.etcdWriteFailed.Load(), c.etcdConnOK.Load(), c.etcdConnFailed.Load()))
	row("bad in", "bad Admin API requests (bodies, paths, queries, headers)", c.badInputs.Load())
	row("bad in", "  answered 5xx / transport errors", fmt.Sprintf("%d / %d", c.bad5xx.Load(), c.badErrors.Load()))
	var kinds []string
	for i, k := range transportErrKinds {
		if n := c.badErrKinds[i].Load(); n > 0 {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		}
	}
	if len(kinds) > 0 {
		row("bad in", "  transport errors by kind; within 1 s of a reload", fmt.Sprintf("%s; %d", strings.Join(kinds, ", "), c.badErrNearReload.Load()))
	}
	row("bad in", "  panics in the main gateway's log", c.panics.Load())
	row("lost", "acknowledged writes lost: main gateway (at the end)", c.adminLost.Load())
	row("lost", "acknowledged writes lost: over kill -9 restarts (of verified)", fmt.Sprintf("%d (of %d)", c.crashLost.Load(), c.crashVerified.Load()))
	row("lost", "acknowledged writes lost: full disk, live and after restart", fmt.Sprintf("%d (of %d)", c.diskLost.Load(), c.diskVerified.Load()))
	row("lost", "acknowledged writes lost: etcd mode, members killed (of verified)", fmt.Sprintf("%d (of %d)", c.etcdLost.Load(), c.etcdVerified.Load()))
	row("lost", "established streams dropped (route changes, reloads, faults)", c.streamDropped.Load())
	row("lost", "bytes corrupted: streams / short conns / UDP datagrams", fmt.Sprintf("%d/%d/%d", c.streamCorrupt.Load(), c.shortCorrupt.Load(), c.udpCorrupt.Load()))
	row("latency", "p99 connect (dial + first 16-byte echo), short connections", c.connectLat.quantile(0.99).Round(10*time.Microsecond))
	row("latency", "p99 Admin API write (PUT/DELETE)", c.adminLat.quantile(0.99).Round(10*time.Microsecond))
	pct := func(a, b int64) string {
		if a == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%+.1f%%", 100*float64(b-a)/float64(a))
	}
	row("process", "main gateway RSS (KiB) at start", start.rssKiB)
	row("process", "  idle after warm-up -> idle at the end (sessions expired)", fmt.Sprintf("%d -> %d (%s)", base.rssKiB, end.rssKiB, pct(int64(base.rssKiB), int64(end.rssKiB))))
	row("process", "  of it anonymous (allocated): after warm-up -> end", fmt.Sprintf("%d -> %d (%s)", base.anonKiB, end.anonKiB, pct(int64(base.anonKiB), int64(end.anonKiB))))
	row("process", "  of it file pages (code first run, reclaimable): after warm-up -> end", fmt.Sprintf("%d -> %d (%s)", base.fileKiB, end.fileKiB, pct(int64(base.fileKiB), int64(end.fileKiB))))
	row("process", "main gateway OS threads: after warm-up -> end", fmt.Sprintf("%d -> %d", base.threads, end.threads))
	row("process", "main gateway open fds: start / after warm-up -> end", fmt.Sprintf("%d / %d -> %d", start.fds, base.fds, end.fds))
	row("process", "Go heap in use after GC (KiB): after warm-up -> end", fmt.Sprintf("%d -> %d (%s)", baseMem.heapInuse>>10, endMem.heapInuse>>10, pct(baseMem.heapInuse, endMem.heapInuse)))
	row("process", "Go heap objects after GC: after warm-up -> end", fmt.Sprintf("%d -> %d (%s)", baseMem.heapObjects, endMem.heapObjects, pct(baseMem.heapObjects, endMem.heapObjects)))
	row("process", "Go heap idle, not returned to the OS (KiB): warm-up -> end", fmt.Sprintf("%d -> %d", baseMem.heapIdleKept>>10, endMem.heapIdleKept>>10))
	row("process", "Go runtime outside the heap (KiB): after warm-up -> end", fmt.Sprintf("%d -> %d (%s)", baseMem.runtimeKiB, endMem.runtimeKiB, pct(baseMem.runtimeKiB, endMem.runtimeKiB)))
	row("process", "  of it heap-profile buckets (KiB): after warm-up -> end", fmt.Sprintf("%d -> %d", baseMem.profileKiB, endMem.profileKiB))
	row("process", "goroutines: after warm-up -> end", fmt.Sprintf("%d -> %d", baseMem.goroutines, endMem.goroutines))
	row("process", "metric series / of them apisix_stream_*: after warm-up -> end", fmt.Sprintf("%d / %d -> %d / %d", baseMem.series, baseMem.stream, endMem.series, endMem.stream))
	return b.String()
}
