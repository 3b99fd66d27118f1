package helm

import (
	"fmt"
	"strings"

	"helm.sh/helm/v4/pkg/strvals"
	"sigs.k8s.io/yaml"
)

// ParseValues reads a YAML (or JSON) document of values; an empty document is no values.
func ParseValues(doc []byte) (map[string]any, error) {
	out := map[string]any{}
	if err := yaml.Unmarshal(doc, &out); err != nil {
		return nil, fmt.Errorf("not a YAML map of values: %w", err)
	}
	if out == nil {
		out = map[string]any{}
	}
	return out, nil
}

// Merge merges src into dst and returns dst: maps are merged key by key,
// recursively; any other value of src (a list, a scalar, null) replaces
// dst's. This is how Flux merges valuesFrom and values.
func Merge(dst, src map[string]any) map[string]any {
	if dst == nil {
		dst = map[string]any{}
	}
	for k, v := range src {
		sm, sok := v.(map[string]any)
		dm, dok := dst[k].(map[string]any)
		if sok && dok {
			dst[k] = Merge(dm, sm)
			continue
		}
		dst[k] = v
	}
	return dst
}

// SetString sets value, as a string, at path of values (Helm's
// --set-string syntax: a.b, a[0].b, a\.b for a dot in a key).
func SetString(values map[string]any, path, value string) error {
	// The parser reads "path=value" and splits at commas: escape the value
	// so that it stays one string whatever it holds.
	escaped := strings.NewReplacer(`\`, `\\`, `,`, `\,`).Replace(value)
	if err := strvals.ParseIntoString(path+"="+escaped, values); err != nil {
		// The parser's message may quote the value (a secret): name the path only.
		return fmt.Errorf("invalid target path %q", path)
	}
	return nil
}
