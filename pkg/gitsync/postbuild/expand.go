// Package postbuild substitutes ${var} variables in built objects, with the
// semantics of Flux's Kustomization spec.postBuild.
package postbuild

import (
	"fmt"
	"regexp"
	"strings"
)

// nameRE is what a variable name must match, as in Flux.
var nameRE = regexp.MustCompile(`^[_a-zA-Z][_a-zA-Z0-9]*$`)

// ValidName tells whether s may be a variable name.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// unsetError is a ${var} without a value or a default.
type unsetError struct{ names []string }

func (e *unsetError) Error() string {
	return fmt.Sprintf("variable %s not set", strings.Join(quote(e.names), ", "))
}

func quote(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// Expand replaces ${var}, ${var:=default} and ${var:-default} in s. The
// default is used when var is unset or empty, and is taken literally (it
// may not contain '}'). $${ stays a literal ${. Any other $ is left as it
// is, so that shell scripts in ConfigMaps keep their $1 and $$. An unset
// variable without a default is an error that names every such variable;
// a ${ that is not a substitution is an error too (escape it as $${).
func Expand(s string, vars map[string]string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	var unset []string
	seen := map[string]bool{}
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			break
		}
		if i > 0 && s[i-1] == '$' {
			// $${: the escape of a literal ${.
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		rest := s[i+2:]
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated %q (write $${ for a literal ${)", abbrev(s[i:]))
		}
		expr := rest[:end]
		name, def, hasDef := expr, "", false
		if j := strings.Index(expr, ":"); j >= 0 {
			name = expr[:j]
			op := expr[j:]
			if !strings.HasPrefix(op, ":=") && !strings.HasPrefix(op, ":-") {
				return "", fmt.Errorf("bad substitution %q: use ${var}, ${var:=default} or ${var:-default} (write $${ for a literal ${)", "${"+expr+"}")
			}
			def, hasDef = op[2:], true
		}
		if !ValidName(name) {
			return "", fmt.Errorf("bad substitution %q: a variable name is a letter or _, then letters, digits or _ (write $${ for a literal ${)", abbrev("${"+expr+"}"))
		}
		v, ok := vars[name]
		switch {
		case ok && v != "":
			b.WriteString(v)
		case hasDef:
			b.WriteString(def)
		case ok:
			// Set to the empty string, no default: empty, as in Flux.
		default:
			if !seen[name] {
				seen[name] = true
				unset = append(unset, name)
			}
		}
		s = rest[end+1:]
	}
	if len(unset) > 0 {
		return "", &unsetError{names: unset}
	}
	return b.String(), nil
}

// abbrev keeps an error message short; the text comes from Git, before
// substitution, so it holds no value from a Secret.
func abbrev(s string) string {
	if nl := strings.IndexByte(s, '\n'); nl >= 0 {
		s = s[:nl]
	}
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
