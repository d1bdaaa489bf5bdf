// Package logredact keeps Admin API keys out of log lines: a zapcore.Core
// wrapper that blanks the X-API-KEY header and the api_key query argument
// (the two ways of sending a key that Caddy's own request log does not
// redact; it already blanks Cookie, which carries x_api_key) in every
// field of every entry, at any depth.
//
// APISIX reads the key from the api_key argument, the X-API-KEY header and
// the x_api_key cookie (apisix/admin/init.lua check_token).
package logredact

import (
	"net/url"
	"strings"

	"go.uber.org/zap/zapcore"
)

// Redacted replaces every secret value.
const Redacted = "REDACTED"

// secretHeader is the header that carries an admin key, lower case.
const secretHeader = "x-api-key"

// secretArg is the query argument that carries an admin key.
const secretArg = "api_key"

// Core wraps c so that every entry written through it has its keys
// blanked. Wrapping twice is harmless.
func Core(c zapcore.Core) zapcore.Core {
	if _, ok := c.(core); ok {
		return c
	}
	return core{c}
}

// IsWrapped reports whether c is a Core wrapper.
func IsWrapped(c zapcore.Core) bool {
	_, ok := c.(core)
	return ok
}

type core struct{ zapcore.Core }

func (c core) With(fields []zapcore.Field) zapcore.Core {
	return core{c.Core.With(redactFields(fields))}
}

// Check asks the wrapped core, which may filter by logger name or sample,
// and writes through the wrapper if it accepts.
func (c core) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Core.Check(e, nil) == nil {
		return ce
	}
	return ce.AddCore(e, c)
}

func (c core) Write(e zapcore.Entry, fields []zapcore.Field) error {
	return c.Core.Write(e, redactFields(fields))
}

// redactFields returns fields with secrets blanked; it copies only when it
// changes something.
func redactFields(fields []zapcore.Field) []zapcore.Field {
	var out []zapcore.Field
	for i, f := range fields {
		nf, changed := redactField(f)
		if !changed {
			if out != nil {
				out = append(out, f)
			}
			continue
		}
		if out == nil {
			out = append(make([]zapcore.Field, 0, len(fields)), fields[:i]...)
		}
		out = append(out, nf)
	}
	if out == nil {
		return fields
	}
	return out
}

func redactField(f zapcore.Field) (zapcore.Field, bool) {
	switch f.Type {
	case zapcore.StringType:
		if strings.EqualFold(f.Key, secretHeader) {
			f.String = Redacted
			return f, true
		}
		if s := Query(f.String); s != f.String {
			f.String = s
			return f, true
		}
	case zapcore.ObjectMarshalerType:
		if m, ok := f.Interface.(zapcore.ObjectMarshaler); ok {
			f.Interface = object{m}
			return f, true
		}
	case zapcore.ArrayMarshalerType:
		if strings.EqualFold(f.Key, secretHeader) {
			f.Interface = redactedArray{}
			return f, true
		}
		if m, ok := f.Interface.(zapcore.ArrayMarshaler); ok {
			f.Interface = array{m}
			return f, true
		}
	}
	return f, false
}

// Query blanks the api_key arguments of a URI or query string: the value
// of every argument whose name, percent-decoded, is api_key in any case.
// Arguments are split at '&' and at ';' (which Go's server rejects, but a
// client may still have sent a key that way). Anything else is left byte
// for byte.
func Query(s string) string {
	if !mayHoldArg(s) {
		return s
	}
	start := 0
	if i := strings.IndexByte(s, '?'); i >= 0 {
		start = i + 1
	}
	end := len(s)
	if i := strings.IndexByte(s[start:], '#'); i >= 0 {
		end = start + i
	}
	var b strings.Builder
	b.WriteString(s[:start])
	changed := false
	for seg := start; seg <= end; {
		next := seg + strings.IndexAny(s[seg:end], "&;")
		if next < seg { // no separator left
			next = end
		}
		arg := s[seg:next]
		name, _, _ := strings.Cut(arg, "=")
		dec, err := url.QueryUnescape(name)
		if err != nil {
			dec = name
		}
		if strings.EqualFold(dec, secretArg) && arg != name+"="+Redacted {
			arg = name + "=" + Redacted
			changed = true
		}
		b.WriteString(arg)
		if next < end {
			b.WriteByte(s[next])
		}
		seg = next + 1
	}
	if !changed {
		return s
	}
	b.WriteString(s[end:])
	return b.String()
}

// mayHoldArg is a cheap test that s may name api_key, possibly
// percent-encoded.
func mayHoldArg(s string) bool {
	if !strings.ContainsAny(s, "=&;") {
		return false
	}
	l := strings.ToLower(s)
	return strings.Contains(l, "api") || strings.Contains(l, "%")
}

// object marshals a wrapped object through a redacting encoder.
type object struct{ m zapcore.ObjectMarshaler }

func (o object) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	return o.m.MarshalLogObject(objectEncoder{enc})
}

// array marshals a wrapped array through a redacting encoder.
type array struct{ m zapcore.ArrayMarshaler }

func (a array) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	return a.m.MarshalLogArray(arrayEncoder{enc})
}

type redactedArray struct{}

func (redactedArray) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	enc.AppendString(Redacted)
	return nil
}

// objectEncoder blanks the X-API-KEY entry of an object (an HTTP header
// map as Caddy logs it) and query strings in its values, and wraps nested
// objects and arrays.
type objectEncoder struct{ zapcore.ObjectEncoder }

func (e objectEncoder) AddArray(key string, m zapcore.ArrayMarshaler) error {
	if strings.EqualFold(key, secretHeader) {
		return e.ObjectEncoder.AddArray(key, redactedArray{})
	}
	return e.ObjectEncoder.AddArray(key, array{m})
}

func (e objectEncoder) AddObject(key string, m zapcore.ObjectMarshaler) error {
	return e.ObjectEncoder.AddObject(key, object{m})
}

func (e objectEncoder) AddString(key, value string) {
	if strings.EqualFold(key, secretHeader) {
		value = Redacted
	}
	e.ObjectEncoder.AddString(key, Query(value))
}

func (e objectEncoder) AddByteString(key string, value []byte) {
	e.AddString(key, string(value))
}

// AddReflected could hide anything; it is encoded as a blanked string
// when it names the header.
func (e objectEncoder) AddReflected(key string, value any) error {
	if strings.EqualFold(key, secretHeader) {
		e.ObjectEncoder.AddString(key, Redacted)
		return nil
	}
	return e.ObjectEncoder.AddReflected(key, value)
}

// arrayEncoder redacts query strings in array elements and wraps nested
// objects and arrays.
type arrayEncoder struct{ zapcore.ArrayEncoder }

func (e arrayEncoder) AppendString(v string) { e.ArrayEncoder.AppendString(Query(v)) }

func (e arrayEncoder) AppendByteString(v []byte) { e.ArrayEncoder.AppendString(Query(string(v))) }

func (e arrayEncoder) AppendObject(m zapcore.ObjectMarshaler) error {
	return e.ArrayEncoder.AppendObject(object{m})
}

func (e arrayEncoder) AppendArray(m zapcore.ArrayMarshaler) error {
	return e.ArrayEncoder.AppendArray(array{m})
}

// Interface guards
var (
	_ zapcore.Core            = core{}
	_ zapcore.ObjectEncoder   = objectEncoder{}
	_ zapcore.ArrayEncoder    = arrayEncoder{}
	_ zapcore.ObjectMarshaler = object{}
	_ zapcore.ArrayMarshaler  = array{}
)
