package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// FlaggerAPIVersion is the group/version `convert` rewrites.
const FlaggerAPIVersion = "flagger.app/v1beta1"

// flaggerGroup prefixes every Flagger apiVersion.
const flaggerGroup = "flagger.app/"

// Severity of a finding.
type Severity string

const (
	// SeverityWarning: Sluice rejects the object or cannot do what it asks.
	SeverityWarning Severity = "warning"
	// SeverityNote: Sluice accepts it but behaves differently from Flagger.
	SeverityNote Severity = "note"
)

// Finding is something Sluice treats differently from Flagger in a converted object.
type Finding struct {
	Source   string
	Line     int
	Kind     string
	Name     string
	Severity Severity
	Message  string
}

func (f Finding) String() string {
	obj := f.Kind
	if f.Name != "" {
		obj += " " + f.Name
	}
	return fmt.Sprintf("%s:%d: %s: %s: %s", f.Source, f.Line, f.Severity, obj, f.Message)
}

// ConvertResult is the outcome of converting one stream of YAML documents.
type ConvertResult struct {
	// Output is the input with Flagger objects rewritten; everything else,
	// comments and layout included, is byte for byte the same.
	Output []byte
	// Converted counts the Flagger objects rewritten.
	Converted int
	Findings  []Finding
}

// edit replaces old by new at a position of the input.
type edit struct {
	line, col int // 1-based, as yaml.v3 reports them
	old, new  string
}

// ConvertFlagger rewrites the Flagger objects (Canary, MetricTemplate,
// AlertProvider) of a multi-document YAML stream to sluice.dev/v1beta1 and
// reports what Sluice would treat differently. Only the apiVersion values
// (and the deprecated spec.canaryAnalysis key) are edited in place, so
// comments, order, quoting and blank lines are kept. source names the input
// in findings.
func ConvertFlagger(source string, data []byte) (*ConvertResult, error) {
	res := &ConvertResult{}
	var edits []edit
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: not valid YAML: %w", source, err)
		}
		if len(doc.Content) == 0 {
			continue
		}
		c := &converter{source: source, res: res, data: data}
		c.object(doc.Content[0])
		edits = append(edits, c.edits...)
	}
	out, err := applyEdits(data, edits)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	res.Output = out
	sort.SliceStable(res.Findings, func(i, j int) bool { return res.Findings[i].Line < res.Findings[j].Line })
	return res, nil
}

// converter converts the objects of one document.
type converter struct {
	source string
	data   []byte // the whole input, for edits wider than a scalar
	res    *ConvertResult
	edits  []edit
}

// object converts a Flagger object, or the items of a List.
func (c *converter) object(n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		return
	}
	apiVersion := child(n, "apiVersion")
	kind := scalar(child(n, "kind"))
	if kind == "List" { // kubectl get -o yaml of several objects
		if items := child(n, "items"); items != nil && items.Kind == yaml.SequenceNode {
			for _, it := range items.Content {
				c.object(it)
			}
		}
		return
	}
	if apiVersion == nil || !strings.HasPrefix(apiVersion.Value, flaggerGroup) {
		return // not Flagger: passes through unchanged
	}
	name := scalar(child(child(n, "metadata"), "name"))
	r := &reporter{c: c, root: n, kind: kind, name: name}
	if apiVersion.Value != FlaggerAPIVersion {
		r.warn(n, "apiVersion %s is not converted: only %s maps to Sluice; upgrade the manifest to v1beta1 with Flagger first", apiVersion.Value, FlaggerAPIVersion)
		return
	}
	switch kind {
	case "Canary", "MetricTemplate", "AlertProvider":
	default:
		r.warn(n, "kind %s of %s has no Sluice equivalent: left unchanged", orDash(kind), FlaggerAPIVersion)
		return
	}
	c.edits = append(c.edits, edit{line: apiVersion.Line, col: apiVersion.Column, old: FlaggerAPIVersion, new: sluicev1beta1.GroupVersion.String()})
	c.res.Converted++
	if kind == "Canary" {
		c.renameCanaryAnalysis(r, n)
		c.convertLoadTests(r, n)
		c.dropSourceMatches(r, n)
	}
	r.check()
}

// renameCanaryAnalysis renames Flagger's deprecated spec.canaryAnalysis to spec.analysis.
func (c *converter) renameCanaryAnalysis(r *reporter, n *yaml.Node) {
	spec := child(n, "spec")
	key := childKey(spec, "canaryAnalysis")
	if key == nil {
		return
	}
	if child(spec, "analysis") != nil {
		r.warn(key, "spec.canaryAnalysis (deprecated in Flagger) is not in Sluice's API and spec.analysis is set too: remove spec.canaryAnalysis")
		return
	}
	c.edits = append(c.edits, edit{line: key.Line, col: key.Column, old: "canaryAnalysis", new: "analysis"})
	key.Value = "analysis" // the checks read the renamed object
	r.note(key, "spec.canaryAnalysis (deprecated in Flagger) renamed to spec.analysis")
}

// child returns the value of a key of a mapping node, or nil.
func child(n *yaml.Node, key string) *yaml.Node {
	if k := childKey(n, key); k != nil {
		return n.Content[indexOf(n, k)+1]
	}
	return nil
}

// childKey returns the key node of a mapping node, or nil.
func childKey(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i]
		}
	}
	return nil
}

func indexOf(n *yaml.Node, k *yaml.Node) int {
	for i, c := range n.Content {
		if c == k {
			return i
		}
	}
	return -1
}

func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// applyEdits replaces each edit's old text at its position. Positions are
// line and column (in characters); the old text must start there.
func applyEdits(data []byte, edits []edit) ([]byte, error) {
	if len(edits) == 0 {
		return data, nil
	}
	lineStart := []int{0}
	for i, b := range data {
		if b == '\n' {
			lineStart = append(lineStart, i+1)
		}
	}
	type span struct {
		at  int
		old string
		new string
	}
	spans := make([]span, 0, len(edits))
	for _, e := range edits {
		if e.line < 1 || e.line > len(lineStart) {
			return nil, fmt.Errorf("line %d out of range", e.line)
		}
		at := lineStart[e.line-1]
		for i := 1; i < e.col && at < len(data); i++ { // columns count characters
			_, size := utf8.DecodeRune(data[at:])
			at += size
		}
		if at < len(data) && (data[at] == '"' || data[at] == '\'') {
			at++
		}
		if !bytes.HasPrefix(data[at:], []byte(e.old)) {
			return nil, fmt.Errorf("line %d: expected %q at column %d, but it is written otherwise (escaped, an alias or a block scalar): write it plainly to convert it", e.line, e.old, e.col)
		}
		spans = append(spans, span{at: at, old: e.old, new: e.new})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].at < spans[j].at })
	var out bytes.Buffer
	prev := 0
	for _, s := range spans {
		out.Write(data[prev:s.at])
		out.WriteString(s.new)
		prev = s.at + len(s.old)
	}
	out.Write(data[prev:])
	return out.Bytes(), nil
}

// decodeStrict decodes a YAML node into a Sluice type, rejecting unknown
// fields as the API server does.
func decodeStrict(n *yaml.Node, into any) error {
	data, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	return sigsyaml.UnmarshalStrict(data, into)
}
