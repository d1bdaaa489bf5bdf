package syslog

import (
	"strconv"
	"time"
)

// Facility and severity codes of RFC 5424 section 6.2.1, the ones
// APISIX's syslog plugin sends with.
const (
	FacilitySyslog = 5 // messages generated internally by syslogd
	SeverityInfo   = 6 // informational
)

// AppendRFC5424 appends one RFC 5424 message to dst, framed as
// apisix/utils/rfc5424.lua encode does it:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID - - MSG\n
//
// with MSGID and STRUCTURED-DATA nil ("-"), the timestamp in UTC with
// milliseconds, and a trailing newline (the frame delimiter on TCP). An
// empty hostname or app name is the nil value "-".
func AppendRFC5424(dst []byte, facility, severity int, t time.Time, hostname, appname string, pid int, msg []byte) []byte {
	if hostname == "" {
		hostname = "-"
	}
	if appname == "" {
		appname = "-"
	}
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(facility*8+severity), 10)
	dst = append(dst, ">1 "...)
	dst = t.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z")
	dst = append(dst, ' ')
	dst = append(dst, hostname...)
	dst = append(dst, ' ')
	dst = append(dst, appname...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(pid), 10)
	dst = append(dst, " - - "...)
	dst = append(dst, msg...)
	return append(dst, '\n')
}
