package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"text/template"
	"text/template/parse"
	"time"
)

// MaxRenderedQuery bounds a rendered query. A template may repeat a long
// variable or pad with printf; past this size the rendering fails instead of
// growing the controller's memory (Prometheus refuses far shorter queries anyway).
const MaxRenderedQuery = 64 << 10

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
// an empty string in the query. Values (names, variables) are inserted as
// they are: they are data, never parsed as template text. Loops (range) and
// template calls are refused, since a template is written by any user who
// may create a Canary or a MetricTemplate and a loop could keep the
// controller busy for hours; the output is bounded by MaxRenderedQuery.
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
	if err := refuseLoops(t); err != nil {
		return "", fmt.Errorf("invalid query template: %w", err)
	}
	b := &boundedBuffer{max: MaxRenderedQuery}
	if err := t.Execute(b, nil); err != nil {
		return "", fmt.Errorf("failed to render the query: %w", err)
	}
	return b.String(), nil
}

// refuseLoops accepts only straight-line templates: actions, if and with.
// range, define/block and template calls are the only ways to make the
// rendering time grow beyond the template's length.
func refuseLoops(t *template.Template) error {
	for _, tt := range t.Templates() {
		if tt.Name() != t.Name() {
			return fmt.Errorf("{{ define %q }} is not allowed: write the query inline", tt.Name())
		}
	}
	if t.Tree == nil {
		return nil
	}
	return walk(t.Root)
}

func walk(n parse.Node) error {
	switch n := n.(type) {
	case nil:
		return nil
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := walk(c); err != nil {
				return err
			}
		}
	case *parse.IfNode:
		if err := walk(n.List); err != nil {
			return err
		}
		return walk(n.ElseList)
	case *parse.WithNode:
		if err := walk(n.List); err != nil {
			return err
		}
		return walk(n.ElseList)
	case *parse.RangeNode:
		return errors.New("{{ range }} is not allowed in a query template")
	case *parse.TemplateNode:
		return fmt.Errorf("{{ template %q }} is not allowed in a query template", n.Name)
	}
	return nil
}

// errQueryTooLong is returned by Render for an output above MaxRenderedQuery.
var errQueryTooLong = fmt.Errorf("the rendered query is longer than %d bytes", MaxRenderedQuery)

// boundedBuffer fails a write that would take it past max bytes, which
// stops the template's execution.
type boundedBuffer struct {
	bytes.Buffer
	max int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		return 0, errQueryTooLong
	}
	return b.Buffer.Write(p)
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
