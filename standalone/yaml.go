package standalone

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	yaml "go.yaml.in/yaml/v3"
)

// maxYAMLNodes bounds the values an aliased document may expand to (a
// "billion laughs" document is refused instead of exhausting memory).
const maxYAMLNodes = 1 << 20

var errYAMLTooLarge = errors.New("invalid yaml: aliases expand to too many values")

// decodeYAML decodes a YAML document into the JSON value forms. Scalars
// keep their YAML types except timestamps and binary, which stay the text
// written (lyaml has no such types).
func decodeYAML(data []byte) (Document, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("invalid yaml: %w", err)
	}
	if root.Kind == 0 {
		return nil, errors.New("invalid yaml: empty document")
	}
	budget := maxYAMLNodes
	v, err := yamlValue(&root, &budget, 0)
	if err != nil {
		return nil, err
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("invalid yaml: the document is not a mapping")
	}
	return Document(doc), nil
}

func yamlValue(n *yaml.Node, budget *int, depth int) (any, error) {
	*budget--
	if *budget < 0 {
		return nil, errYAMLTooLarge
	}
	if depth > 1000 {
		return nil, errors.New("invalid yaml: nested too deeply")
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return yamlValue(n.Content[0], budget, depth+1)
	case yaml.AliasNode:
		return yamlValue(n.Alias, budget, depth+1)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := yamlValue(c, budget, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		if err := yamlMapping(n, out, budget, depth); err != nil {
			return nil, err
		}
		return out, nil
	case yaml.ScalarNode:
		return yamlScalar(n)
	}
	return nil, fmt.Errorf("invalid yaml: unexpected node at line %d", n.Line)
}

// yamlMapping fills out with n's pairs; "<<" merges keys the mapping does
// not set itself, as YAML 1.1 merge keys do.
func yamlMapping(n *yaml.Node, out map[string]any, budget *int, depth int) error {
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, val)
			continue
		}
		kv, err := yamlValue(k, budget, depth+1)
		if err != nil {
			return err
		}
		key, err := yamlKey(kv)
		if err != nil {
			return fmt.Errorf("invalid yaml: line %d: %w", k.Line, err)
		}
		v, err := yamlValue(val, budget, depth+1)
		if err != nil {
			return err
		}
		out[key] = v
	}
	for _, m := range merges {
		for m.Kind == yaml.AliasNode {
			m = m.Alias
		}
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, src := range srcs {
			for src.Kind == yaml.AliasNode {
				src = src.Alias
			}
			if src.Kind != yaml.MappingNode {
				return fmt.Errorf("invalid yaml: line %d: merge of a value that is not a mapping", src.Line)
			}
			merged := map[string]any{}
			if err := yamlMapping(src, merged, budget, depth+1); err != nil {
				return err
			}
			for k, v := range merged {
				if _, set := out[k]; !set {
					out[k] = v
				}
			}
		}
	}
	return nil
}

// yamlKey is the string a key becomes once encoded as JSON, as cjson
// encodes a Lua table's number keys.
func yamlKey(v any) (string, error) {
	switch k := v.(type) {
	case string:
		return k, nil
	case json.Number:
		return string(k), nil
	case bool:
		return strconv.FormatBool(k), nil
	case nil:
		return "null", nil
	}
	return "", errors.New("a mapping key must be a scalar")
}

func yamlScalar(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fmt.Errorf("invalid yaml: line %d: %w", n.Line, err)
		}
		return b, nil
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return json.Number(strconv.FormatInt(i, 10)), nil
		}
		var u uint64
		if err := n.Decode(&u); err == nil {
			return json.Number(strconv.FormatUint(u, 10)), nil
		}
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, fmt.Errorf("invalid yaml: line %d: %w", n.Line, err)
		}
		return floatNumber(f, n.Line)
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, fmt.Errorf("invalid yaml: line %d: %w", n.Line, err)
		}
		return floatNumber(f, n.Line)
	}
	// !!str, !!timestamp, !!binary and custom tags: the text as written
	return n.Value, nil
}

func floatNumber(f float64, line int) (any, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fmt.Errorf("invalid yaml: line %d: %v is not a JSON number", line, f)
	}
	return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
}
