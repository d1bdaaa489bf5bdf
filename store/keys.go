package store

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/caddy-apisix/stream/model"
)

// DefaultPrefix is the storage key prefix used when New is given none.
const DefaultPrefix = "apisix"

// counterName is the key, under the prefix, of the POST id counter. Kind
// names may not take it, so it never clashes with a kind's directory.
const counterName = "gen_id"

// tempPrefix starts the names of the temporary files of atomic writes.
// Escaped names never start with a dot, so Load can tell them apart.
const tempPrefix = ".tmp-"

// cleanPrefix turns prefix into a relative slash path without "." or ".."
// segments, so keys cannot leave the storage root; empty means
// DefaultPrefix.
func cleanPrefix(prefix string) string {
	p := strings.TrimPrefix(path.Clean("/"+strings.ReplaceAll(prefix, `\`, "/")), "/")
	if p == "" {
		return DefaultPrefix
	}
	return p
}

// checkKind reports whether kind can name a key directory: lower-case
// letters, digits and underscores, starting with a letter, and not the
// counter's name.
func checkKind(kind model.Kind) error {
	s := string(kind)
	if s == "" {
		return errors.New("empty kind")
	}
	if s == counterName {
		return fmt.Errorf("kind %q is reserved", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c == '_' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return fmt.Errorf("invalid kind %q: want lower-case letters, digits and '_'", s)
	}
	return nil
}

// escapeName turns an object id into one file-name-safe path segment.
// Lower-case letters, digits, '-', '_' and non-leading '.' are kept; every
// other byte becomes %XX (upper-case hex). Upper-case letters are escaped
// too, because case-insensitive file systems (macOS, Windows) would
// otherwise merge ids such as "A" and "a". No result starts with a dot, so
// "." and ".." and hidden or temporary names cannot occur. The empty id
// has no name.
func escapeName(id string) (string, error) {
	if id == "" {
		return "", errors.New("empty id")
	}
	var b strings.Builder
	b.Grow(len(id))
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' && i > 0 {
			b.WriteByte(c)
			continue
		}
		const hex = "0123456789ABCDEF"
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xF])
	}
	return b.String(), nil
}

// unescapeName reverses escapeName. It accepts only the canonical form
// escapeName produces, so every id has exactly one name and back.
func unescapeName(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty name")
	}
	b := make([]byte, 0, len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(name) {
			return "", fmt.Errorf("name %q: truncated escape", name)
		}
		hi, ok1 := unhex(name[i+1])
		lo, ok2 := unhex(name[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("name %q: bad escape %q", name, name[i:i+3])
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	id := string(b)
	if canon, err := escapeName(id); err != nil || canon != name {
		return "", fmt.Errorf("name %q is not in canonical escaped form", name)
	}
	return id, nil
}

// unhex decodes one upper-case hex digit.
func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// objectKey is the storage key of kind/id under prefix.
func objectKey(prefix string, kind model.Kind, id string) (string, error) {
	if err := checkKind(kind); err != nil {
		return "", err
	}
	name, err := escapeName(id)
	if err != nil {
		return "", err
	}
	return prefix + "/" + string(kind) + "/" + name, nil
}
