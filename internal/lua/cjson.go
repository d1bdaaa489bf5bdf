package lua

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// This file reproduces lua-cjson's encoding of scalars and its decoder
// errors, which APISIX passes to clients verbatim ("invalid request body:
// Expected value but found invalid token at character 1"). The decoder is
// a scanner only: once it accepts a body, encoding/json decodes it.
//
// Differences from cjson, chosen so that everything accepted here is also
// valid for encoding/json: numbers follow strict JSON (cjson also takes
// "01", "0x1F", "+1", "inf"), and raw control characters inside strings,
// which cjson keeps, are escaped before decoding rather than rejected.

// cjsonMaxDepth is cjson's default decode_max_depth.
const cjsonMaxDepth = 1000

type cjTok int

const (
	cjObjBegin cjTok = iota
	cjObjEnd
	cjArrBegin
	cjArrEnd
	cjString
	cjNumber
	cjBoolean
	cjNull
	cjColon
	cjComma
	cjEnd
	cjError
)

// cjTokNames are cjson's json_token_type_name.
var cjTokNames = [...]string{
	"T_OBJ_BEGIN", "T_OBJ_END", "T_ARR_BEGIN", "T_ARR_END", "T_STRING",
	"T_NUMBER", "T_BOOLEAN", "T_NULL", "T_COLON", "T_COMMA", "T_END", "T_ERROR",
}

type cjToken struct {
	typ   cjTok
	index int    // offset where the token (or the error) starts
	err   string // for cjError
}

type cjParser struct {
	data  []byte
	pos   int
	depth int
	// fix is set when a string holds raw control characters.
	fix bool
	// end is where a NUL byte ended the input (cjson stops there).
	end int
}

// cjFail carries a cjson error message through the recursive descent.
type cjFail struct{ msg string }

var strictNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// Decode is cjson.decode: the decoded value (numbers as json.Number, null
// as nil), or cjson's error message ("Expected value but found invalid
// token at character 1"), which APISIX shows clients after "invalid
// request body: ".
func Decode(data []byte) (v any, errMsg string) {
	clean, msg := checkJSON(data)
	if msg != "" {
		return nil, msg
	}
	dec := json.NewDecoder(bytes.NewReader(clean))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		// The scanner accepts only what encoding/json accepts, so this
		// is a safety net, not a path clients should see.
		return nil, err.Error()
	}
	return v, ""
}

// checkJSON validates data as cjson would. It returns the bytes to hand
// to encoding/json (data itself, or a copy with control characters
// escaped and anything after a NUL dropped) or cjson's error message.
func checkJSON(data []byte) (clean []byte, errMsg string) {
	p := &cjParser{data: data, end: len(data)}
	if msg := p.run(); msg != "" {
		return nil, msg
	}
	clean = data[:p.end]
	if p.fix {
		clean = escapeControls(clean)
	}
	return clean, ""
}

func (p *cjParser) run() (msg string) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(cjFail)
			if !ok {
				panic(r)
			}
			msg = f.msg
		}
	}()
	t := p.next()
	p.value(t)
	t = p.next()
	if t.typ != cjEnd {
		p.fail("the end", t)
	}
	if t.index < len(p.data) {
		p.end = t.index // a NUL ended the input early
	}
	return ""
}

func (p *cjParser) fail(expected string, t cjToken) {
	found := cjTokNames[t.typ]
	if t.typ == cjError {
		found = t.err
	}
	panic(cjFail{fmt.Sprintf("Expected %s but found %s at character %d", expected, found, t.index+1)})
}

func (p *cjParser) descend() {
	p.depth++
	if p.depth > cjsonMaxDepth {
		panic(cjFail{fmt.Sprintf("Found too many nested data structures (%d) at character %d", p.depth, p.pos)})
	}
}

func (p *cjParser) value(t cjToken) {
	switch t.typ {
	case cjString, cjNumber, cjBoolean, cjNull:
	case cjObjBegin:
		p.object()
	case cjArrBegin:
		p.array()
	default:
		p.fail("value", t)
	}
}

func (p *cjParser) object() {
	p.descend()
	t := p.next()
	if t.typ == cjObjEnd {
		p.depth--
		return
	}
	for {
		if t.typ != cjString {
			p.fail("object key string", t)
		}
		if t = p.next(); t.typ != cjColon {
			p.fail("colon", t)
		}
		p.value(p.next())
		t = p.next()
		if t.typ == cjObjEnd {
			p.depth--
			return
		}
		if t.typ != cjComma {
			p.fail("comma or object end", t)
		}
		t = p.next()
	}
}

func (p *cjParser) array() {
	p.descend()
	t := p.next()
	if t.typ == cjArrEnd {
		p.depth--
		return
	}
	for {
		p.value(t)
		t = p.next()
		if t.typ == cjArrEnd {
			p.depth--
			return
		}
		if t.typ != cjComma {
			p.fail("comma or array end", t)
		}
		t = p.next()
	}
}

func (p *cjParser) next() cjToken {
	d := p.data
	for p.pos < len(d) && (d[p.pos] == ' ' || d[p.pos] == '\t' || d[p.pos] == '\n' || d[p.pos] == '\r') {
		p.pos++
	}
	t := cjToken{index: p.pos}
	if p.pos >= len(d) || d[p.pos] == 0 {
		t.typ = cjEnd
		return t
	}
	c := d[p.pos]
	if typ, ok := punct(c); ok {
		p.pos++
		t.typ = typ
		return t
	}
	switch {
	case c == '"':
		p.str(&t)
	case c == '-' || ('0' <= c && c <= '9'):
		p.number(&t)
	case p.lit("true"), p.lit("false"):
		t.typ = cjBoolean
	case p.lit("null"):
		t.typ = cjNull
	default:
		t.typ, t.err = cjError, "invalid token"
	}
	return t
}

func punct(c byte) (cjTok, bool) {
	switch c {
	case '{':
		return cjObjBegin, true
	case '}':
		return cjObjEnd, true
	case '[':
		return cjArrBegin, true
	case ']':
		return cjArrEnd, true
	case ':':
		return cjColon, true
	case ',':
		return cjComma, true
	}
	return 0, false
}

// lit consumes the literal s if it comes next.
func (p *cjParser) lit(s string) bool {
	if len(p.data)-p.pos >= len(s) && string(p.data[p.pos:p.pos+len(s)]) == s {
		p.pos += len(s)
		return true
	}
	return false
}

func (p *cjParser) number(t *cjToken) {
	start := p.pos
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if ('0' <= c && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			p.pos++
			continue
		}
		break
	}
	if !strictNumber.Match(p.data[start:p.pos]) {
		p.pos = start
		t.typ, t.err = cjError, "invalid number"
		return
	}
	t.typ = cjNumber
}

func (p *cjParser) str(t *cjToken) {
	d := p.data
	p.pos++ // opening quote
	for {
		if p.pos >= len(d) || d[p.pos] == 0 {
			t.typ, t.err, t.index = cjError, "unexpected end of string", p.pos
			return
		}
		c := d[p.pos]
		switch {
		case c == '"':
			p.pos++
			t.typ = cjString
			return
		case c == '\\':
			if p.pos+1 >= len(d) {
				t.typ, t.err, t.index = cjError, "invalid escape code", p.pos
				return
			}
			switch d[p.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.pos += 2
			case 'u':
				n, ok := unicodeEscape(d[p.pos:])
				if !ok {
					t.typ, t.err, t.index = cjError, "invalid unicode escape code", p.pos
					return
				}
				p.pos += n
			default:
				t.typ, t.err, t.index = cjError, "invalid escape code", p.pos
				return
			}
		default:
			if c < 0x20 {
				p.fix = true
			}
			p.pos++
		}
	}
}

// unicodeEscape checks "\uXXXX" (with a following low surrogate when XXXX
// is a high one) at the start of b, as cjson's json_append_unicode_escape
// does, and returns its length.
func unicodeEscape(b []byte) (int, bool) {
	hi, ok := hex4(b)
	if !ok {
		return 0, false
	}
	switch {
	case hi >= 0xDC00 && hi <= 0xDFFF:
		return 0, false // lone low surrogate
	case hi >= 0xD800 && hi <= 0xDBFF:
		if len(b) < 12 || b[6] != '\\' || b[7] != 'u' {
			return 0, false
		}
		lo, ok := hex4(b[6:])
		if !ok || lo < 0xDC00 || lo > 0xDFFF {
			return 0, false
		}
		return 12, true
	}
	return 6, true
}

func hex4(b []byte) (int, bool) {
	if len(b) < 6 {
		return 0, false
	}
	n := 0
	for _, c := range b[2:6] {
		n <<= 4
		switch {
		case '0' <= c && c <= '9':
			n |= int(c - '0')
		case 'a' <= c && c <= 'f':
			n |= int(c-'a') + 10
		case 'A' <= c && c <= 'F':
			n |= int(c-'A') + 10
		default:
			return 0, false
		}
	}
	return n, true
}

// escapeControls rewrites raw control characters inside strings as \u00XX
// (outside strings the scanner has already rejected them).
func escapeControls(b []byte) []byte {
	out := make([]byte, 0, len(b)+16)
	in, esc := false, false
	for _, c := range b {
		switch {
		case in && esc:
			esc = false
		case in && c == '\\':
			esc = true
		case c == '"':
			in = !in
		case in && c < 0x20:
			out = append(out, fmt.Sprintf(`\u%04x`, c)...)
			continue
		}
		out = append(out, c)
	}
	return out
}

// EncodeScalar encodes a scalar as lua-cjson does (numbers with %.14g,
// "/" escaped). Tables are encoded by encoding/json.
func EncodeScalar(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case bool:
		if t {
			return "true"
		}
		return "false"
	case string:
		var b strings.Builder
		b.WriteByte('"')
		for _, r := range t {
			switch r {
			case '"':
				b.WriteString(`\"`)
			case '\\':
				b.WriteString(`\\`)
			case '/':
				b.WriteString(`\/`)
			case '\b':
				b.WriteString(`\b`)
			case '\f':
				b.WriteString(`\f`)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			default:
				if r < 0x20 || r == 0x7f {
					fmt.Fprintf(&b, `\u%04x`, r)
				} else {
					b.WriteRune(r)
				}
			}
		}
		b.WriteByte('"')
		return b.String()
	}
	if f, ok := Number(v); ok {
		return FormatNumber(f)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
