package metrics

import (
	"bytes"
	"fmt"
	"text/template"
	"time"
)

// Model is what a query template sees, with Flagger's function names:
// {{ name }}, {{ namespace }}, {{ target }}, {{ service }}, {{ ingress }},
// {{ route }}, {{ interval }} and {{ variables.<key> }}.
type Model struct {
	Name      string
	Namespace string
	Target    string
	Service   string
	Ingress   string
	Route     string
	Interval  time.Duration
	Variables map[string]string
}

// Render renders a query template. An unknown variable is an error, never
// an empty string in the query.
func Render(query string, m Model) (string, error) {
	vars := m.Variables
	if vars == nil {
		vars = map[string]string{}
	}
	funcs := template.FuncMap{
		"name":      func() string { return m.Name },
		"namespace": func() string { return m.Namespace },
		"target":    func() string { return m.Target },
		"service":   func() string { return m.Service },
		"ingress":   func() string { return m.Ingress },
		"route":     func() string { return m.Route },
		"interval":  func() string { return promDuration(m.Interval) },
		"variables": func() map[string]string { return vars },
	}
	t, err := template.New("query").Funcs(funcs).Option("missingkey=error").Parse(query)
	if err != nil {
		return "", fmt.Errorf("invalid query template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, nil); err != nil {
		return "", fmt.Errorf("failed to render the query: %w", err)
	}
	return b.String(), nil
}

// promDuration formats a duration as Prometheus expects in a range: 1m, 30s, 1m30s, 500ms.
func promDuration(d time.Duration) string {
	if d <= 0 {
		d = time.Minute
	}
	if d%time.Second != 0 {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	s := int64(d / time.Second)
	out := ""
	if h := s / 3600; h > 0 {
		out += fmt.Sprintf("%dh", h)
		s %= 3600
	}
	if m := s / 60; m > 0 {
		out += fmt.Sprintf("%dm", m)
		s %= 60
	}
	if s > 0 {
		out += fmt.Sprintf("%ds", s)
	}
	return out
}
