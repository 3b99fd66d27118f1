package metrics

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	. "github.com/onsi/gomega"
)

// FuzzRender renders arbitrary query templates with arbitrary Canary values.
// Invariants: Render never panics and returns in time (no loops), its output
// is bounded by MaxRenderedQuery, and values are data: a variable holding
// template syntax comes out verbatim, never evaluated.
func FuzzRender(f *testing.F) {
	for _, q := range []string{
		`sum(rate(http_requests_total{namespace="{{ namespace }}",pod=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ interval }}]))`,
		`{{ variables.direction }} {{ name }} {{ service }} {{ ingress }} {{ route }}`,
		`{{ if eq (variables.mode) "strict" }}1{{ else }}0{{ end }}`,
		`{{ with variables.x }}{{ . }}{{ end }}{{ printf "%q" name }}`,
		`{{ range 1000000000 }}x{{ end }}`,
		`{{ range $k, $v := variables }}{{ $k }}{{ end }}`,
		`{{ define "x" }}{{ template "x" }}{{ end }}{{ template "x" }}`,
		`{{ block "b" . }}b{{ end }}`,
		`{{ printf "%0999999d" 1 }}{{ printf "%0999999d" 1 }}`,
		`{{ len (variables) }} {{ index (variables) "x" }} {{ slice (name) 1 }}`,
		`{{ variables.missing }}`, `{{ nope }}`, `{{ name `, `{{ call name }}`, `{{ index 1 2 }}`,
	} {
		f.Add(q, "{{ name }}", "podinfo", int64(time.Minute))
	}
	f.Add(`{{ variables.x }}{{ variables.x }}`, strings.Repeat("a", 40000), "t", int64(0))
	f.Add(`{{ variables.x }}`, `{{ define "y" }}{{ end }}`, "t", int64(-1))
	f.Fuzz(func(t *testing.T, query, value, target string, interval int64) {
		done := make(chan struct{})
		var out string
		var err error
		go func() {
			defer close(done)
			out, err = Render(query, Model{Name: "c", Namespace: "ns", Target: target, Service: "s",
				Interval: time.Duration(interval), Variables: map[string]string{"x": value, "mode": value}})
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Render(%q) runs for more than 5s", query)
		}
		if err != nil {
			if out != "" {
				t.Fatalf("Render(%q) returned an output with the error %v", query, err)
			}
			return
		}
		if len(out) > MaxRenderedQuery {
			t.Fatalf("Render(%q) returned %d bytes, above %d", query, len(out), MaxRenderedQuery)
		}
		// A value comes out verbatim wherever it is printed alone.
		v, err := Render(`[{{ variables.x }}|{{ target }}]`, Model{Target: target, Variables: map[string]string{"x": value}})
		if len(value)+len(target)+3 <= MaxRenderedQuery && (err != nil || v != "["+value+"|"+target+"]") {
			t.Fatalf("variables are not inserted verbatim: %q, %v", v, err)
		}
		_ = utf8.ValidString(out)
	})
}

func TestRender_RefusesLoopsAndHugeOutputs(t *testing.T) {
	g := NewWithT(t)
	for q, msg := range map[string]string{
		`{{ range 1000000000 }}{{ end }}`:                               "{{ range }} is not allowed",
		`{{ range $k, $v := variables }}{{ $v }}{{ end }}`:              "{{ range }} is not allowed",
		`{{ if name }}{{ range 5 }}{{ end }}{{ end }}`:                  "{{ range }} is not allowed",
		`{{ with name }}{{ else }}{{ range 5 }}{{ end }}{{ end }}`:      "{{ range }} is not allowed",
		`{{ define "x" }}{{ template "x" }}{{ end }}{{ template "x" }}`: `{{ define "x" }} is not allowed`,
		`{{ template "query" }}`:                                        `{{ template "query" }} is not allowed`,
		`{{ block "b" . }}b{{ end }}`:                                   `{{ define "b" }} is not allowed`,
		`{{ printf "%0999999d" 1 }}`:                                    "longer than 65536 bytes",
	} {
		_, err := Render(q, Model{})
		g.Expect(err).To(MatchError(ContainSubstring(msg)), q)
	}
	out, err := Render(`{{ variables.x }}`, Model{Variables: map[string]string{"x": `{{ name }}`}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(Equal(`{{ name }}`))
}
