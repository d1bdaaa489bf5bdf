//go:build linux

package realclients

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// errUnterminated is returned for a quote still open at the end of the
// text: the caller may append the next line and try again.
var errUnterminated = errors.New("unterminated quote")

// parseCommands splits shell text into commands of words, the way sh
// does for the simple commands documents show: single quotes keep
// everything, double quotes keep everything but \" \\ \$ \` escapes, a
// backslash outside quotes escapes the next character and joins lines, a
// # at the start of a word comments to the end of the line, and a newline
// or ; ends a command. Expansions ($VAR, globs, pipes) are not supported:
// a document command that needs them is reported, not silently run.
func parseCommands(text string) ([][]string, error) {
	var (
		cmds   [][]string
		words  []string
		word   strings.Builder
		inWord bool
	)
	endWord := func() {
		if inWord {
			words = append(words, word.String())
			word.Reset()
			inWord = false
		}
	}
	endCmd := func() {
		endWord()
		if len(words) > 0 {
			cmds = append(cmds, words)
			words = nil
		}
	}
	r := []rune(text)
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case c == '\'':
			inWord = true
			j := i + 1
			for j < len(r) && r[j] != '\'' {
				j++
			}
			if j == len(r) {
				return nil, errUnterminated
			}
			word.WriteString(string(r[i+1 : j]))
			i = j
		case c == '"':
			inWord = true
			j := i + 1
			for ; j < len(r) && r[j] != '"'; j++ {
				if r[j] == '$' || r[j] == '`' {
					return nil, fmt.Errorf("expansion %q inside double quotes is not supported", r[j])
				}
				if r[j] == '\\' && j+1 < len(r) && strings.ContainsRune("\"\\$`\n", r[j+1]) {
					j++
					if r[j] == '\n' {
						continue
					}
				}
				word.WriteRune(r[j])
			}
			if j >= len(r) {
				return nil, errUnterminated
			}
			i = j
		case c == '\\':
			if i+1 == len(r) {
				return nil, errUnterminated
			}
			i++
			if r[i] != '\n' {
				inWord = true
				word.WriteRune(r[i])
			}
		case c == '#' && !inWord:
			for i+1 < len(r) && r[i+1] != '\n' {
				i++
			}
		case c == '\n' || c == ';':
			endCmd()
		case c == ' ' || c == '\t' || c == '\r':
			endWord()
		case strings.ContainsRune("|&<>$`(){}*?[", c) && !(inWord && strings.ContainsRune("{}[]", c)):
			return nil, fmt.Errorf("shell syntax %q is not supported", c)
		default:
			inWord = true
			word.WriteRune(c)
		}
	}
	endCmd()
	return cmds, nil
}

// codeBlock is one fenced code block of a Markdown document.
type codeBlock struct {
	lang    string // the info string's first word: sh, json, …
	section string // the nearest heading above it, without #s
	text    string
}

// codeBlocks returns the fenced (```) code blocks of a Markdown document
// in order. An unclosed fence is an error: the document is broken.
func codeBlocks(md string) ([]codeBlock, error) {
	var (
		blocks  []codeBlock
		section string
		cur     *codeBlock
		fence   string
		lines   []string
	)
	for _, line := range strings.Split(md, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur != nil {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, "`~") == "" {
				cur.text = strings.Join(lines, "\n")
				blocks = append(blocks, *cur)
				cur, lines = nil, nil
				continue
			}
			lines = append(lines, line)
			continue
		}
		switch {
		case strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~"):
			mark := trimmed[:1]
			fence = strings.Repeat(mark, len(trimmed)-len(strings.TrimLeft(trimmed, mark)))
			info := strings.Fields(strings.TrimLeft(trimmed, mark))
			cur = &codeBlock{section: section}
			if len(info) > 0 {
				cur.lang = info[0]
			}
		case strings.HasPrefix(trimmed, "#"):
			section = strings.TrimSpace(strings.TrimLeft(trimmed, "#"))
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("code block in section %q is not closed", cur.section)
	}
	return blocks, nil
}

// curlCommands returns the curl commands of a plain-text document (the
// seed document has no fences): a line starting with "curl " plus the
// following lines up to the end of its quoted body.
func curlCommands(doc string) ([][]string, error) {
	var cmds [][]string
	lines := strings.Split(doc, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(strings.TrimSpace(lines[i]), "curl ") {
			continue
		}
		text := strings.TrimSpace(lines[i])
		for {
			parsed, err := parseCommands(text)
			if err == nil {
				if len(parsed) != 1 {
					return nil, fmt.Errorf("line %d: %d commands in one curl block", i+1, len(parsed))
				}
				cmds = append(cmds, parsed[0])
				break
			}
			if !errors.Is(err, errUnterminated) || i+1 == len(lines) {
				return nil, fmt.Errorf("line %d: %v", i+1, err)
			}
			i++
			text += "\n" + lines[i]
		}
	}
	return cmds, nil
}

// flagValue returns the argument after the first occurrence of flag.
func flagValue(args []string, flag string) (string, bool) {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

func TestParseCommands(t *testing.T) {
	tests := []struct {
		in   string
		want [][]string
		err  bool
	}{
		{"go run ./cmd/caddy run --config examples/Caddyfile", [][]string{{"go", "run", "./cmd/caddy", "run", "--config", "examples/Caddyfile"}}, false},
		{"curl http://x -H 'X-API-KEY: k' -X PUT -d '\n{\n \"a\": 1\n}'", [][]string{{"curl", "http://x", "-H", "X-API-KEY: k", "-X", "PUT", "-d", "\n{\n \"a\": 1\n}"}}, false},
		{"a \\\n  b # comment\nc\"d e\"f; g", [][]string{{"a", "b"}, {"cd ef"}, {"g"}}, false},
		{`x --with a@v0.0.0=.`, [][]string{{"x", "--with", "a@v0.0.0=."}}, false},
		{`echo "a\"b\\c"`, [][]string{{"echo", `a"b\c`}}, false},
		{"echo ''", [][]string{{"echo", ""}}, false},
		{"echo 'open", nil, true},
		{"echo $HOME", nil, true},
		{"a | b", nil, true},
		{"a > f", nil, true},
	}
	for _, tt := range tests {
		got, err := parseCommands(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("parseCommands(%q) error %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if !tt.err && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseCommands(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCodeBlocks(t *testing.T) {
	md := "# T\n\n## Quick start\n\ntext\n\n```sh\na b\n```\n\n````json\n{}\n````\n### Sub\n~~~\nc\n~~~\n"
	got, err := codeBlocks(md)
	if err != nil {
		t.Fatal(err)
	}
	want := []codeBlock{{"sh", "Quick start", "a b"}, {"json", "Quick start", "{}"}, {"", "Sub", "c"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("codeBlocks = %+v, want %+v", got, want)
	}
	if _, err := codeBlocks("```sh\nopen"); err == nil {
		t.Error("an unclosed fence was accepted")
	}
}

func TestCurlCommands(t *testing.T) {
	doc := "x\ncurl http://h/1 -X PUT -d '\n{\n\"a\": 1\n}'\n\nWith this\n    curl http://h/2\n"
	got, err := curlCommands(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"curl", "http://h/1", "-X", "PUT", "-d", "\n{\n\"a\": 1\n}"}, {"curl", "http://h/2"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("curlCommands = %q, want %q", got, want)
	}
	if _, err := curlCommands("curl -d 'open\nnever closed"); err == nil {
		t.Error("an unterminated body was accepted")
	}
}

func FuzzParseCommands(f *testing.F) {
	for _, s := range []string{"a 'b c' \"d\\\"e\" f\\ g # h\ni;j", "curl -d '\n{}'", "x\\", "\"", "a|b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cmds, err := parseCommands(s)
		if err != nil {
			return
		}
		for _, c := range cmds {
			if len(c) == 0 {
				t.Fatalf("empty command from %q", s)
			}
		}
		if _, err := curlCommands(s); err != nil && !strings.Contains(s, "curl") {
			t.Fatalf("curlCommands failed without a curl line: %v", err)
		}
	})
}

func FuzzCodeBlocks(f *testing.F) {
	for _, s := range []string{"# a\n```sh\nx\n```\n", "````\n```\n````", "~~~go\n", "##\n```"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		blocks, err := codeBlocks(s)
		if err != nil {
			return
		}
		for _, b := range blocks {
			if !strings.Contains(s, b.text) {
				t.Fatalf("block text %q is not in the document", b.text)
			}
		}
	})
}
