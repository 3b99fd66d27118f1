package postbuild

import (
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "alpha", "_b1": "beta", "EMPTY": "", "N": "3"}
	cases := []struct{ in, want string }{
		{"no variables", "no variables"},
		{"${A}", "alpha"},
		{"x-${A}-${_b1}-y", "x-alpha-beta-y"},
		{"${A}${A}", "alphaalpha"},
		{"${MISSING:=def}", "def"},
		{"${MISSING:-def}", "def"},
		{"${A:=def}", "alpha"},
		{"${A:-def}", "alpha"},
		{"${EMPTY:=def}", "def"},
		{"${EMPTY}", ""},
		{"${MISSING:=}", ""},
		{"${MISSING:=a b:c-d=e}", "a b:c-d=e"},
		{"$${A}", "${A}"},
		{"$${MISSING}", "${MISSING}"},
		{"pre $${A} ${A}", "pre ${A} alpha"},
		{"$A $1 $$ $", "$A $1 $$ $"},
		{"cost: $5 {x}", "cost: $5 {x}"},
		{"${N}", "3"},
		{"line1\n  ${A}\nline3", "line1\n  alpha\nline3"},
	}
	for _, c := range cases {
		got, err := Expand(c.in, vars)
		if err != nil {
			t.Errorf("Expand(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("Expand(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestExpand_Errors(t *testing.T) {
	vars := map[string]string{"A": "alpha"}
	cases := []struct{ in, want string }{
		{"${MISSING}", `variable "MISSING" not set`},
		{"${X} ${A} ${Y} ${X}", `variable "X", "Y" not set`},
		{"${A", "unterminated"},
		{"${}", "bad substitution"},
		{"${1A}", "bad substitution"},
		{"${A-B}", "bad substitution"},
		{"${A B}", "bad substitution"},
		{"${A:+x}", "bad substitution"},
		{"${A:x}", "bad substitution"},
	}
	for _, c := range cases {
		got, err := Expand(c.in, vars)
		if err == nil {
			t.Errorf("Expand(%q) = %q, want an error", c.in, got)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Expand(%q): %v, want it to say %q", c.in, err, c.want)
		}
	}
}

func TestValidName(t *testing.T) {
	for _, n := range []string{"A", "_", "_a1", "APP_TAG", "x9"} {
		if !ValidName(n) {
			t.Errorf("ValidName(%q) = false", n)
		}
	}
	for _, n := range []string{"", "1A", "A-B", "A.B", "A B", "é"} {
		if ValidName(n) {
			t.Errorf("ValidName(%q) = true", n)
		}
	}
}
