package plugin

import (
	"os"
	"strconv"
)

// LogVar is the value of a variable in the log phase: nginx's stream
// variables that only an ended session has ($status, $bytes_sent,
// $bytes_received, $session_time, $upstream_addr, the time and process
// ones), then the session's own (vars.Set). ok is false when it has no
// value (a nil in Lua).
func LogVar(s *Session, e *Entry, name string) (string, bool) {
	end := e.Start.Add(e.Duration)
	switch name {
	case "status":
		return strconv.Itoa(e.Status), true
	case "bytes_sent":
		return strconv.FormatInt(e.BytesSent, 10), true
	case "bytes_received":
		return strconv.FormatInt(e.BytesReceived, 10), true
	case "session_time":
		return strconv.FormatFloat(e.Duration.Seconds(), 'f', 3, 64), true
	case "upstream_addr":
		return e.Upstream, e.Upstream != ""
	case "time_iso8601":
		return end.Format("2006-01-02T15:04:05-07:00"), true
	case "time_local":
		return end.Format("02/Jan/2006:15:04:05 -0700"), true
	case "msec":
		return strconv.FormatFloat(float64(end.UnixMilli())/1000, 'f', 3, 64), true
	case "pid":
		return strconv.Itoa(os.Getpid()), true
	case "hostname":
		h, err := os.Hostname()
		return h, err == nil
	}
	v := s.Get(name)
	return v, v != ""
}
