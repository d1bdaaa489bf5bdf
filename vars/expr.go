package vars

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/caddy-apisix/stream/router"
)

// Expr is a lua-resty-expr expression over stream variables (APISIX's
// match.vars, for example [["route_id","==","3"],["remote_addr","ipmatch",
// ["127.0.0.0/8"]]]): a list of rules that all hold, or
// ["OR"|"AND"|"!OR"|"!AND", rule...]. A rule is [var, op, value] or
// [var, "!", op, value]; ops are ==, ~=, >, >=, <, <=, ~~ (regex), ~*
// (regex, any case), in, has and ipmatch.
type Expr struct {
	logic string // "AND" or "OR"
	not   bool
	subs  []*Expr
	// a leaf rule
	leaf bool
	v    Var
	op   string
	neg  bool
	str  string
	num  float64
	isN  bool
	list []any
	re   *regexp.Regexp
	pfx  []netip.Prefix
}

// CompileExpr compiles an expression decoded from JSON (UseNumber or
// not). Its errors read as lua-resty-expr's.
func CompileExpr(v any) (*Expr, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("rule should be wrapped inside brackets")
	}
	if len(arr) == 0 {
		return &Expr{logic: "AND"}, nil
	}
	if s, ok := arr[0].(string); ok {
		switch s {
		case "AND", "OR", "!AND", "!OR":
			e := &Expr{logic: strings.TrimPrefix(s, "!"), not: s[0] == '!'}
			for _, sub := range arr[1:] {
				c, err := CompileExpr(sub)
				if err != nil {
					return nil, err
				}
				e.subs = append(e.subs, c)
			}
			return e, nil
		}
		return compileRule(arr)
	}
	e := &Expr{logic: "AND"}
	for _, sub := range arr {
		c, err := CompileExpr(sub)
		if err != nil {
			return nil, err
		}
		e.subs = append(e.subs, c)
	}
	return e, nil
}

func compileRule(arr []any) (*Expr, error) {
	if len(arr) < 3 {
		return nil, fmt.Errorf("rule too short")
	}
	name, _ := arr[0].(string)
	e := &Expr{leaf: true, v: Parse(name)}
	op, _ := arr[1].(string)
	val := arr[2]
	if op == "!" {
		if len(arr) < 4 {
			return nil, fmt.Errorf("rule too short")
		}
		e.neg = true
		op, _ = arr[2].(string)
		val = arr[3]
	}
	e.op = op
	switch t := val.(type) {
	case string:
		e.str = t
	case json.Number:
		f, err := t.Float64()
		if err != nil {
			return nil, err
		}
		e.num, e.isN, e.str = f, true, t.String()
	case float64:
		e.num, e.isN, e.str = t, true, strconv.FormatFloat(t, 'g', -1, 64)
	case []any:
		e.list = t
	}
	switch op {
	case "==", "~=", ">", ">=", "<", "<=", "has":
	case "in":
		if e.list == nil {
			return nil, fmt.Errorf("invalid operator 'in': value should be an array")
		}
	case "~~", "~*":
		src := e.str
		if op == "~*" {
			src = "(?i)" + src
		}
		re, err := regexp.Compile(src)
		if err != nil {
			return nil, fmt.Errorf("invalid regex %q: %w", e.str, err)
		}
		e.re = re
	case "ipmatch":
		list := e.list
		if list == nil {
			list = []any{e.str}
		}
		for _, x := range list {
			s, _ := x.(string)
			p, err := router.ParsePrefix(s)
			if err != nil || !p.IsValid() {
				return nil, fmt.Errorf("invalid ip address: %s", s)
			}
			e.pfx = append(e.pfx, p)
		}
	default:
		return nil, fmt.Errorf("invalid operator '%s'", op)
	}
	return e, nil
}

// Eval reports whether the expression holds for s.
func (e *Expr) Eval(s *Set) bool {
	if e.leaf {
		return e.evalRule(s) != e.neg
	}
	var r bool
	if e.logic == "OR" {
		r = false
		for _, sub := range e.subs {
			if sub.Eval(s) {
				r = true
				break
			}
		}
	} else {
		r = true
		for _, sub := range e.subs {
			if !sub.Eval(s) {
				r = false
				break
			}
		}
	}
	return r != e.not
}

func (e *Expr) evalRule(s *Set) bool {
	l := s.Value(e.v)
	has := s.Has(e.v)
	switch e.op {
	case "==":
		if !has {
			return false
		}
		if e.isN {
			f, err := strconv.ParseFloat(l, 64)
			return err == nil && f == e.num
		}
		return l == e.str
	case "~=":
		if !has {
			return true
		}
		if e.isN {
			f, err := strconv.ParseFloat(l, 64)
			return err != nil || f != e.num
		}
		return l != e.str
	case ">", ">=", "<", "<=":
		lf, err1 := strconv.ParseFloat(l, 64)
		rf, err2 := strconv.ParseFloat(e.str, 64)
		if !has || err1 != nil || err2 != nil {
			return false
		}
		switch e.op {
		case ">":
			return lf > rf
		case ">=":
			return lf >= rf
		case "<":
			return lf < rf
		}
		return lf <= rf
	case "~~", "~*":
		return has && e.re.MatchString(l)
	case "in":
		if !has {
			return false
		}
		for _, x := range e.list {
			switch t := x.(type) {
			case string:
				if t == l {
					return true
				}
			case json.Number:
				if t.String() == l {
					return true
				}
			case float64:
				if f, err := strconv.ParseFloat(l, 64); err == nil && f == t {
					return true
				}
			}
		}
		return false
	case "has":
		// a stream variable is a string: "has" is substring-free
		// membership of a single value
		return has && l == e.str
	case "ipmatch":
		a, err := netip.ParseAddr(l)
		if !has || err != nil {
			return false
		}
		a = a.Unmap()
		for _, p := range e.pfx {
			if p.Contains(a) {
				return true
			}
		}
	}
	return false
}
