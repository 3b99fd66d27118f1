package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// SeverityAction marks what Sluice runs once the operator does exactly what the
// finding says (an allow-list entry of the load tester); until then the
// load tester refuses the task and the release fails.
const SeverityAction Severity = "action"

func (r *reporter) action(at *yaml.Node, format string, args ...any) {
	r.add(SeverityAction, at, format, args...)
}

// maxLoadDuration is the load tester's default --max-duration: a longer
// http-load run is refused.
const maxLoadDuration = time.Hour

// convertLoadTests rewrites the load tester tasks of a Canary's webhooks.
// Flagger's load tester ran any command (type cmd through sh -c); Sluice's
// runs none unless the operator allow-lists it. hey, the load generator of
// every Flagger tutorial, becomes the native http-load task; every other
// command is reported with the allow-list entry it needs.
func (c *converter) convertLoadTests(r *reporter, canary *yaml.Node) {
	analysis := child(child(canary, "spec"), "analysis")
	hooks := child(analysis, "webhooks")
	if hooks == nil || hooks.Kind != yaml.SequenceNode {
		return
	}
	for _, hook := range hooks.Content {
		md := child(hook, "metadata")
		cmdKey, cmd := childKey(md, "cmd"), child(md, "cmd")
		if cmd == nil || cmd.Kind != yaml.ScalarNode {
			continue
		}
		typ := "cmd" // Flagger's default task type
		if t := scalar(child(md, "type")); t != "" {
			typ = t
		}
		line := strings.TrimSpace(cmd.Value)
		switch typ {
		case "cmd", "bash":
			argv, err := splitCommandLine(line)
			if err == nil && isHey(argv) {
				c.heyToHTTPLoad(r, analysis, md, cmdKey, argv)
				continue
			}
			c.reportCommand(r, cmdKey, typ, line, err)
		case "helm", "helmv3", "kubectl":
			c.reportCommand(r, cmdKey, typ, line, nil)
		default:
			r.warn(cmdKey, "load tester task type %s has no equivalent in Sluice's load tester (http-load, cmd, bash, helm, kubectl): the webhook will fail", typ)
		}
	}
}

// reportCommand tells the operator the exact allow-list entry (for
// --shell-allow-file) a command task needs. Sluice runs type cmd without a
// shell, split on blanks, where Flagger ran sh -c: a line that needs more
// (quotes, pipes, variables) must become type bash, allowed with shell: true.
func (c *converter) reportCommand(r *reporter, at *yaml.Node, typ, line string, splitErr error) {
	allowed := line
	entry := map[string]any{}
	switch typ {
	case "helm", "helmv3":
		allowed = "helm " + line
		if typ == "helmv3" {
			r.warn(at, "load tester task type helmv3 is type helm in Sluice: set metadata.type: helm")
		}
	case "kubectl":
		allowed = "kubectl " + line
	case "cmd":
		if splitErr != nil || strings.ContainsAny(line, `'"\`) {
			r.warn(at, "Flagger ran type cmd through sh -c; Sluice runs it split on blanks, without a shell, and this command needs one: set metadata.type: bash")
			entry["shell"] = true
		}
	case "bash":
		entry["shell"] = true
	}
	entry["exact"] = allowed
	data, _ := json.Marshal(entry) // JSON is YAML: the entry as one flow mapping
	r.action(at, "the load tester refuses command tasks unless started with --enable-shell-tasks and the line allow-listed: add `- %s` under commands: in its --shell-allow-file", data)
}

// heyToHTTPLoad rewrites metadata {type: cmd|bash, cmd: hey ...} to an
// http-load task in place, or reports the metadata to write when the YAML
// is not laid out for an in-place edit.
func (c *converter) heyToHTTPLoad(r *reporter, analysis, md, cmdKey *yaml.Node, argv []string) {
	load, err := parseHey(argv[1:])
	if err != nil {
		r.warn(cmdKey, "the hey command cannot become an http-load task (%s): the load tester refuses type cmd unless allow-listed; rewrite it as metadata.type: http-load (docs/loadtester.md)", err)
		return
	}
	fields, notes := httpLoadFields(load, analysisLength(analysis))
	typeVal := child(md, "type")
	if typeVal == nil {
		fields = append([][2]string{{"type", sluiceHTTPLoad}}, fields...)
	}
	raw, ok := c.restOfLine(cmdKey)
	if !ok || md.Style&yaml.FlowStyle != 0 || (typeVal != nil && typeVal.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0) {
		r.warn(cmdKey, "the hey command is not written on one line of a block mapping, so it is not rewritten: replace metadata with %s", flowMapping(fields, typeVal != nil))
		return
	}
	indent := strings.Repeat(" ", cmdKey.Column-1)
	var b strings.Builder
	for i, f := range fields {
		if i > 0 {
			b.WriteString("\n" + indent)
		}
		b.WriteString(f[0] + ": " + quoteYAML(f[1]))
	}
	c.edits = append(c.edits, edit{line: cmdKey.Line, col: cmdKey.Column, old: raw, new: b.String()})
	if typeVal != nil {
		c.edits = append(c.edits, edit{line: typeVal.Line, col: typeVal.Column, old: typeVal.Value, new: sluiceHTTPLoad})
	}
	msg := "the hey command became an http-load task"
	if len(notes) > 0 {
		msg += ": " + strings.Join(notes, "; ")
	}
	r.note(cmdKey, "%s", msg)
}

// sluiceHTTPLoad is the load tester's native load task type.
const sluiceHTTPLoad = "http-load"

// httpLoadFields are the http-load metadata for a hey run, in the order
// docs/loadtester.md lists them, and notes on what differs from hey.
func httpLoadFields(l *heyLoad, analysis time.Duration) ([][2]string, []string) {
	notes := append([]string(nil), l.Notes...)
	rate := l.Rate
	if rate == 0 {
		rate = 10
		notes = append(notes, "hey without -q sends as fast as it can; http-load needs a rate: 10/s set, adjust it")
	}
	duration := l.Duration
	if duration == 0 {
		duration = time.Duration((l.Requests+rate-1)/rate) * time.Second
		notes = append(notes, fmt.Sprintf("-n %d at %d/s is a %s run", l.Requests, rate, duration))
	}
	// Flagger's load tester ran the command again at each analysis step
	// once the previous run ended; http-load runs once per revision, so
	// its run spans the analysis.
	if analysis > duration {
		notes = append(notes, fmt.Sprintf("duration %s (hey's %s) spans the analysis: Flagger started hey again at each step, http-load runs once per revision", shortDuration(min(analysis, maxLoadDuration)), shortDuration(duration)))
		duration = min(analysis, maxLoadDuration)
	}
	fields := [][2]string{
		{"url", l.URL},
		{"rate", strconv.Itoa(rate)},
		{"duration", shortDuration(duration)},
		{"concurrency", strconv.Itoa(l.Concurrency)},
	}
	if l.Concurrency > 100 {
		notes = append(notes, fmt.Sprintf("concurrency %d exceeds the load tester's default --max-concurrency (100)", l.Concurrency))
	}
	if rate > 1000 {
		notes = append(notes, fmt.Sprintf("rate %d exceeds the load tester's default --max-rate (1000)", rate))
	}
	if l.Method != "GET" {
		fields = append(fields, [2]string{"method", l.Method})
	}
	if len(l.Headers) > 0 {
		data, _ := json.Marshal(l.Headers) // keys sorted
		fields = append(fields, [2]string{"headers", string(data)})
	}
	if l.Body != "" {
		fields = append(fields, [2]string{"body", l.Body})
	}
	switch {
	case l.Timeout == 0:
		fields = append(fields, [2]string{"timeout", "1m"})
		notes = append(notes, "hey -t 0 (no timeout) became 1m, http-load's longest")
	case l.Timeout > time.Minute:
		fields = append(fields, [2]string{"timeout", "1m"})
		notes = append(notes, fmt.Sprintf("timeout %s cut to 1m, http-load's longest", l.Timeout))
	default:
		fields = append(fields, [2]string{"timeout", shortDuration(l.Timeout)})
	}
	sort.Strings(notes)
	return fields, notes
}

// analysisLength estimates how long a Canary's analysis runs: interval
// times its steps (iterations, stepWeights, or maxWeight/stepWeight).
func analysisLength(analysis *yaml.Node) time.Duration {
	if analysis == nil {
		return 0
	}
	data, err := yaml.Marshal(analysis)
	if err != nil {
		return 0
	}
	var a sluicev1beta1.CanaryAnalysis
	if sigsyaml.Unmarshal(data, &a) != nil || a.Interval == nil {
		return 0
	}
	steps := int(a.Iterations)
	switch {
	case steps > 0:
	case len(a.StepWeights) > 0:
		steps = len(a.StepWeights)
	case a.StepWeight > 0:
		maxWeight := a.MaxWeight
		if maxWeight == 0 {
			maxWeight = 100
		}
		steps = int((maxWeight + a.StepWeight - 1) / a.StepWeight)
	}
	return time.Duration(steps) * a.Interval.Duration
}

// restOfLine returns the text from a key to the end of its line when that
// is exactly "key: value" for the node's value (a one-line scalar, with
// no comment after it), so it can be replaced whole.
func (c *converter) restOfLine(key *yaml.Node) (string, bool) {
	lines := bytes.Split(c.data, []byte("\n"))
	if key.Line < 1 || key.Line > len(lines) {
		return "", false
	}
	runes := []rune(string(lines[key.Line-1]))
	if key.Column-1 > len(runes) {
		return "", false
	}
	rest := strings.TrimRight(string(runes[key.Column-1:]), " \t\r")
	var parsed map[string]any
	if yaml.Unmarshal([]byte(rest), &parsed) != nil || len(parsed) != 1 || !strings.HasPrefix(rest, key.Value+":") {
		return "", false
	}
	v, ok := parsed[key.Value].(string)
	if !ok || strings.TrimSpace(v) == "" || strings.Contains(rest, " #") {
		return "", false
	}
	return rest, true
}

// quoteYAML writes a string as a YAML double-quoted scalar (JSON's string
// syntax is YAML's).
func quoteYAML(s string) string {
	data, _ := json.Marshal(s)
	return string(data)
}

// flowMapping is the metadata to write by hand, as one flow mapping.
func flowMapping(fields [][2]string, withType bool) string {
	parts := make([]string, 0, len(fields)+1)
	if withType {
		parts = append(parts, "type: "+sluiceHTTPLoad)
	}
	for _, f := range fields {
		parts = append(parts, f[0]+": "+quoteYAML(f[1]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// shortDuration prints 1m rather than Go's 1m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
