package loadtester

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Command task types. They exist only with --enable-shell-tasks, and then
// run only command lines matched by the allow-list.
const (
	// TypeCmd runs metadata.cmd split on spaces, without a shell.
	TypeCmd = "cmd"
	// TypeBash runs metadata.cmd with `bash -c`, only when the allow-list
	// entry that matches it has shell: true.
	TypeBash = "bash"
	// TypeHelm runs `helm <metadata.cmd>` without a shell.
	TypeHelm = "helm"
	// TypeKubectl runs `kubectl <metadata.cmd>` without a shell.
	TypeKubectl = "kubectl"
)

// AllowRule admits command lines. The line matched is the full command:
// metadata.cmd for cmd and bash, "helm <cmd>" and "kubectl <cmd>" for helm
// and kubectl. Exactly one of Exact and Regexp is set; a Regexp must match
// the whole line.
type AllowRule struct {
	Exact  string `json:"exact,omitempty"`
	Regexp string `json:"regexp,omitempty"`
	// Shell lets the matched lines run with `bash -c` (type bash). Without
	// it, type bash is refused for them.
	Shell bool `json:"shell,omitempty"`

	re *regexp.Regexp
}

// AllowFile is the format of --shell-allow-file (YAML or JSON):
//
//	commands:
//	- exact: "helm test podinfo -n test"
//	- regexp: "kubectl -n test rollout status deploy/[a-z-]+"
//	- regexp: "curl -sf http://podinfo-canary\\.test:9898/.*"
//	  shell: true
type AllowFile struct {
	Commands []AllowRule `json:"commands"`
}

// ShellConfig configures command tasks.
type ShellConfig struct {
	Enabled       bool
	Allow         []AllowRule
	Timeout       time.Duration
	MaxOutput     int
	MaxConcurrent int
}

// LoadAllowFile reads an allow-list file.
func LoadAllowFile(path string) ([]AllowRule, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read the allow-list: %w", err)
	}
	var f AllowFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("failed to parse the allow-list %s: %w", path, err)
	}
	return f.Commands, nil
}

// ParseAllowFlag turns a --shell-allow value into a rule: "re:<regexp>" is
// a regexp, anything else an exact command line.
func ParseAllowFlag(v string) AllowRule {
	if re, ok := strings.CutPrefix(v, "re:"); ok {
		return AllowRule{Regexp: re}
	}
	return AllowRule{Exact: v}
}

// compileRules validates the rules and compiles their regexps.
func compileRules(rules []AllowRule) ([]AllowRule, error) {
	out := make([]AllowRule, len(rules))
	for i, r := range rules {
		if (r.Exact == "") == (r.Regexp == "") {
			return nil, fmt.Errorf("allow-list entry %d: set exactly one of exact and regexp", i)
		}
		if r.Regexp != "" {
			re, err := regexp.Compile(`^(?:` + r.Regexp + `)$`)
			if err != nil {
				return nil, fmt.Errorf("allow-list entry %d: %w", i, err)
			}
			r.re = re
		}
		out[i] = r
	}
	return out, nil
}

// match returns the first rule admitting line.
func match(rules []AllowRule, line string) (AllowRule, bool) {
	for _, r := range rules {
		if (r.re != nil && r.re.MatchString(line)) || (r.re == nil && r.Exact == line) {
			return r, true
		}
	}
	return AllowRule{}, false
}

// errRefused is a command the configuration does not allow (403).
var errRefused = errors.New("command refused")

// commandFor returns the argv of a command task, or errRefused.
func commandFor(cfg *ShellConfig, typ, cmd string) ([]string, error) {
	if !cfg.Enabled {
		return nil, fmt.Errorf("%w: task type %q is disabled; the operator must start the load tester with --enable-shell-tasks and allow-list the command", errRefused, typ)
	}
	cmd = strings.TrimSpace(cmd)
	if cmd == "" {
		return nil, fmt.Errorf("%w: metadata.cmd is empty", errRefused)
	}
	line := cmd
	if typ == TypeHelm || typ == TypeKubectl {
		line = typ + " " + cmd
	}
	rule, ok := match(cfg.Allow, line)
	if !ok {
		return nil, fmt.Errorf("%w: %q is not in the allow-list", errRefused, line)
	}
	if typ == TypeBash {
		if !rule.Shell {
			return nil, fmt.Errorf("%w: %q may not run through a shell (its allow-list entry lacks shell: true); use type cmd", errRefused, line)
		}
		return []string{"bash", "-c", cmd}, nil
	}
	return strings.Fields(line), nil
}

// boundedBuffer keeps the first max bytes written and counts the rest.
type boundedBuffer struct {
	buf     bytes.Buffer
	max     int
	dropped int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	n := len(p) // report everything written, or exec sees a short write
	room := b.max - b.buf.Len()
	if room < len(p) {
		b.dropped += len(p) - max(room, 0)
		p = p[:max(room, 0)]
	}
	b.buf.Write(p)
	return n, nil
}

func (b *boundedBuffer) String() string {
	if b.dropped > 0 {
		return b.buf.String() + fmt.Sprintf("\n[%d bytes truncated]", b.dropped)
	}
	return b.buf.String()
}

// runCommand runs argv with the configured timeout and returns its combined,
// bounded output.
func runCommand(ctx context.Context, cfg *ShellConfig, argv []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	c := exec.CommandContext(ctx, argv[0], argv[1:]...) //nolint:gosec // argv is allow-listed
	c.WaitDelay = 5 * time.Second
	out := &boundedBuffer{max: cfg.MaxOutput}
	c.Stdout, c.Stderr = out, out
	err := c.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return out.String(), fmt.Errorf("command timed out after %s: %w", cfg.Timeout, err)
	}
	if err != nil {
		return out.String(), fmt.Errorf("command failed: %w", err)
	}
	return out.String(), nil
}
