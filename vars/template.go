package vars

// Template is a string with "$name" and "${name}" variables, parsed once:
// APISIX's core.utils.resolve_var pattern (?<!\\)\$(\{(\w+)\}|(\w+)).
// Everything else, including "\$name", is literal text.
type Template struct {
	segs []segment
}

// segment is a literal piece or a variable of a template.
type segment struct {
	lit   string
	v     Var
	isVar bool
}

// Single is the template of one variable, by name (a chash key with
// hash_on vars, a limit-conn key with key_type var).
func Single(name string) Template {
	return Template{segs: []segment{{v: Parse(name), isVar: true}}}
}

func isWord(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// ParseTemplate parses tpl; it never fails: what is not a variable is
// literal.
func ParseTemplate(tpl string) Template {
	var t Template
	lit := 0 // start of the pending literal
	flush := func(end int) {
		if end > lit {
			t.segs = append(t.segs, segment{lit: tpl[lit:end]})
		}
	}
	for i := 0; i < len(tpl); i++ {
		if tpl[i] != '$' || (i > 0 && tpl[i-1] == '\\') {
			continue
		}
		j := i + 1
		if j < len(tpl) && tpl[j] == '{' {
			k := j + 1
			for k < len(tpl) && isWord(tpl[k]) {
				k++
			}
			if k > j+1 && k < len(tpl) && tpl[k] == '}' {
				flush(i)
				t.segs = append(t.segs, segment{v: Parse(tpl[j+1 : k]), isVar: true})
				lit = k + 1
				i = k
			}
			continue
		}
		k := j
		for k < len(tpl) && isWord(tpl[k]) {
			k++
		}
		if k > j {
			flush(i)
			t.segs = append(t.segs, segment{v: Parse(tpl[j:k]), isVar: true})
			lit = k
			i = k - 1
		}
	}
	flush(len(tpl))
	return t
}

// IsZero reports an empty template.
func (t Template) IsZero() bool { return len(t.segs) == 0 }

// Resolved reports whether any variable of t has a value in s. APISIX
// falls back to remote_addr for keys where none has.
func (t Template) Resolved(s *Set) bool {
	for i := range t.segs {
		if t.segs[i].isVar && s.Has(t.segs[i].v) {
			return true
		}
	}
	return false
}

// Append appends t rendered with s to dst.
func (t Template) Append(dst []byte, s *Set) []byte {
	for i := range t.segs {
		if t.segs[i].isVar {
			dst = s.Append(dst, t.segs[i].v)
		} else {
			dst = append(dst, t.segs[i].lit...)
		}
	}
	return dst
}

// Render is t with s's values.
func (t Template) Render(s *Set) string {
	if len(t.segs) == 1 && t.segs[0].isVar {
		return s.Value(t.segs[0].v)
	}
	var buf [64]byte
	return string(t.Append(buf[:0], s))
}

// Vars lists the variables t names, in order.
func (t Template) Vars() []Var {
	var out []Var
	for _, g := range t.segs {
		if g.isVar {
			out = append(out, g.v)
		}
	}
	return out
}
