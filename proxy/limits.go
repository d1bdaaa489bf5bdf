package proxy

import (
	"net/netip"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apisix/stream/internal/ratewarn"
	"github.com/caddy-apisix/stream/rawsock"
)

// Limits bound what the data path may hold at once, so that a flood of
// new clients (a UDP source-port sweep, a connection storm) cannot take
// the descriptors that accept(2) and the Admin API need. A zero field is
// no limit, except FDReserve (see DefaultFDReserve).
type Limits struct {
	// UDPSessionsPerListener caps the live sessions of each UDP listener.
	UDPSessionsPerListener int
	// UDPSessionsTotal caps the live UDP sessions of the process, over
	// every listener.
	UDPSessionsTotal int
	// UDPUnansweredTimeout is the idle timeout of a UDP session whose
	// upstream has not answered yet (nginx proxy_responses / a first-reply
	// timeout): a spoofed or one-datagram source ends after it instead of
	// the upstream's idle timeout. Zero: DefaultUDPUnansweredTimeout.
	UDPUnansweredTimeout time.Duration
	// TCPConnections caps the concurrent TCP sessions of the process.
	TCPConnections int
	// FDReserve is how many descriptors below RLIMIT_NOFILE stay free for
	// accept(2) and the admin endpoint: a new UDP session whose socket
	// would be numbered within it is refused. Zero: DefaultFDReserve;
	// negative: no reserve.
	FDReserve int
}

// Defaults of Limits.
const (
	DefaultUDPUnansweredTimeout = 5 * time.Second
	// DefaultFDReserve is capped at a quarter of the descriptor limit.
	DefaultFDReserve = 256
)

// Refusal reasons, the reason label of
// apisix_stream_sessions_refused_total.
const (
	refusedUDPListener = "udp_max_sessions"
	refusedUDPTotal    = "udp_max_sessions_total"
	refusedFDReserve   = "fd_reserve"
	refusedTCP         = "tcp_max_connections"
)

// limits is the runtime's view of Limits, read per session without a
// lock.
type limits struct {
	udpPerListener atomic.Int64
	udpTotal       atomic.Int64
	udpUnanswered  atomic.Int64 // nanoseconds
	tcpMax         atomic.Int64
	// fdCeiling is the first descriptor number a new UDP session may not
	// use: RLIMIT_NOFILE minus the reserve; 0 is none.
	fdCeiling atomic.Int64

	udpLive atomic.Int64
	tcpLive atomic.Int64

	// set is what SetLimits was last given
	set atomic.Pointer[Limits]

	warns [4]warnLimiter
}

// SetLimits applies l to new sessions; live ones keep going. It raises
// RLIMIT_NOFILE to its hard limit first (once per process).
func (rt *Runtime) SetLimits(l Limits) {
	nofile := rawsock.RaiseNofile()
	lm := &rt.limits
	given := l
	lm.set.Store(&given)
	lm.udpPerListener.Store(int64(l.UDPSessionsPerListener))
	lm.udpTotal.Store(int64(l.UDPSessionsTotal))
	if l.UDPUnansweredTimeout <= 0 {
		l.UDPUnansweredTimeout = DefaultUDPUnansweredTimeout
	}
	lm.udpUnanswered.Store(int64(l.UDPUnansweredTimeout))
	lm.tcpMax.Store(int64(l.TCPConnections))
	reserve := int64(l.FDReserve)
	if reserve == 0 {
		reserve = min(DefaultFDReserve, nofile/4)
	}
	if reserve > 0 && nofile > reserve {
		lm.fdCeiling.Store(nofile - reserve)
	} else {
		lm.fdCeiling.Store(0)
	}
}

// Limits are the limits SetLimits was last given (zero before).
func (rt *Runtime) Limits() Limits {
	if l := rt.limits.set.Load(); l != nil {
		return *l
	}
	return Limits{}
}

// unansweredTimeout is the idle timeout of a UDP session not answered yet.
func (lm *limits) unansweredTimeout() time.Duration {
	if d := time.Duration(lm.udpUnanswered.Load()); d > 0 {
		return d
	}
	return DefaultUDPUnansweredTimeout
}

// admit counts a new session in live, or reports false (and counts the
// refusal under reason) when the cap limit is set and reached.
func (rt *Runtime) admit(live, limit *atomic.Int64, reason string) bool {
	n := live.Add(1)
	if m := limit.Load(); m > 0 && n > m {
		live.Add(-1)
		rt.refused(reason, m)
		return false
	}
	return true
}

// admitTCP counts a new TCP session, or reports false when the cap is
// reached; an admitted session calls doneTCP when it ends.
func (rt *Runtime) admitTCP() bool {
	return rt.admit(&rt.limits.tcpLive, &rt.limits.tcpMax, refusedTCP)
}

func (rt *Runtime) doneTCP() { rt.limits.tcpLive.Add(-1) }

// admitUDP counts a new UDP session of the process, or reports false when
// the total cap is reached; an admitted session calls doneUDP when it
// ends.
func (rt *Runtime) admitUDP() bool {
	return rt.admit(&rt.limits.udpLive, &rt.limits.udpTotal, refusedUDPTotal)
}

func (rt *Runtime) doneUDP() { rt.limits.udpLive.Add(-1) }

// fdAllowed reports whether a new UDP session may keep socket fd. Linux
// gives a new socket the lowest free descriptor, so a number within the
// reserve means every lower one is taken: the session is refused.
func (rt *Runtime) fdAllowed(fd int) bool {
	c := rt.limits.fdCeiling.Load()
	if c > 0 && int64(fd) >= c {
		rt.refused(refusedFDReserve, c)
		return false
	}
	return true
}

// refused counts a refusal and warns, at most once per ratewarn.Every for each
// reason, with the number refused since the last warning.
func (rt *Runtime) refused(reason string, limit int64) {
	rt.metrics.refused(reason).Inc()
	i := 0
	switch reason {
	case refusedUDPTotal:
		i = 1
	case refusedFDReserve:
		i = 2
	case refusedTCP:
		i = 3
	}
	if n, ok := rt.limits.warns[i].Allow(time.Now()); ok {
		rt.Logger().Warn("session refused: limit reached",
			zap.String("reason", reason), zap.Int64("limit", limit), zap.Int64("refused_since_last_warning", n))
	}
}

// warnUnmatched warns, at most once per ratewarn.Every for each network (tcp,
// udp), that no stream route
// matched a connection or UDP session on the listener local; nginx's
// stream proxy would close it the same silent way.
func (rt *Runtime) warnUnmatched(network string, remote, local netip.AddrPort, sni string) {
	w := &rt.unmatchedWarn[0]
	if network == "udp" {
		w = &rt.unmatchedWarn[1]
	}
	if n, ok := w.Allow(time.Now()); ok {
		rt.Logger().Warn("not hit any route",
			zap.String("network", network), zap.Stringer("listener", local), zap.Stringer("remote", remote),
			zap.String("sni", sni), zap.Int64("unmatched_since_last_warning", n))
	}
}

// warnLimiter lets one warning through per ratewarn.Every and counts the
// rest.
type warnLimiter = ratewarn.Limiter
