package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	. "github.com/onsi/gomega"
	sigsyaml "sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/loadtester"
)

// defaultLimits are the load tester's defaults (cmd/loadtester/options.go).
var defaultLimits = loadtester.LoadLimits{MaxDuration: time.Hour, MaxSyncDuration: 30 * time.Second, MaxRate: 1000, MaxConcurrency: 100, MaxRuns: 16}

// entryOf reads the allow-list entry an action finding gives.
var entryOf = regexp.MustCompile("add `- (\\{.*\\})` under commands: in its --shell-allow-file")

// loadTasks decodes the converted Canaries and returns their webhooks'
// metadata that name a load tester task.
func loadTasks(t *testing.T, out []byte) []map[string]string {
	t.Helper()
	var tasks []map[string]string
	for _, doc := range strings.Split(string(out), "\n---") {
		var c sluicev1beta1.Canary
		if err := sigsyaml.Unmarshal([]byte(doc), &c); err != nil || c.Kind != "Canary" || c.Spec.Analysis == nil {
			continue
		}
		for _, w := range c.Spec.Analysis.Webhooks {
			if w.Metadata != nil && (w.Metadata["cmd"] != "" || w.Metadata["type"] == sluiceHTTPLoad) {
				tasks = append(tasks, w.Metadata)
			}
		}
	}
	return tasks
}

// Acceptance (issue 20): every Flagger tutorial Canary converts with no
// finding that leaves a release unable to run: no warning; every hey task
// is an http-load task the load tester accepts with its default limits;
// every other command task comes with an allow-list entry the load tester
// reads, naming exactly that command line.
func TestConvert_FlaggerTutorialsRun(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "api", "v1beta1", "testdata", "flagger", "*.yaml"))
	if err != nil || len(files) < 5 {
		t.Fatalf("expected the Flagger tutorials, found %d: %v", len(files), err)
	}
	httpLoads := 0
	for _, p := range files {
		t.Run(filepath.Base(p), func(t *testing.T) {
			g := NewWithT(t)
			data, err := os.ReadFile(p)
			g.Expect(err).NotTo(HaveOccurred())
			res, err := ConvertFlagger(p, data)
			g.Expect(err).NotTo(HaveOccurred())
			var entries []string
			for _, f := range res.Findings {
				g.Expect(f.Severity).NotTo(Equal(SeverityWarning), f.String())
				if f.Severity == SeverityAction {
					m := entryOf.FindStringSubmatch(f.Message)
					g.Expect(m).NotTo(BeNil(), f.String())
					entries = append(entries, "- "+m[1])
				}
			}
			allowed := map[string]bool{}
			if len(entries) > 0 {
				file := filepath.Join(t.TempDir(), "allow.yaml")
				g.Expect(os.WriteFile(file, []byte("commands:\n"+strings.Join(entries, "\n")+"\n"), 0o600)).To(Succeed())
				rules, err := loadtester.LoadAllowFile(file)
				g.Expect(err).NotTo(HaveOccurred())
				for _, r := range rules {
					allowed[r.Exact] = true
				}
			}
			for _, md := range loadTasks(t, res.Output) {
				if md["type"] == sluiceHTTPLoad {
					httpLoads++
					_, err := loadtester.ParseLoadSpec(md, defaultLimits)
					g.Expect(err).NotTo(HaveOccurred(), "%v", md)
					continue
				}
				line := strings.TrimSpace(md["cmd"])
				if md["type"] == "helm" || md["type"] == "kubectl" {
					line = md["type"] + " " + line
				}
				g.Expect(allowed).To(HaveKey(line), "a command task without its allow-list entry")
			}
		})
	}
	if httpLoads == 0 {
		t.Error("no tutorial had a hey task: the test proves nothing")
	}
}

// TestConvert_HeyBecomesHTTPLoad: the layouts a hey task is written in.
func TestConvert_HeyBecomesHTTPLoad(t *testing.T) {
	canary := func(metadata string) string {
		return `apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: app
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: app}
  service: {port: 80}
  analysis:
    interval: 30s
    iterations: 4
    webhooks:
      - name: load
        url: http://flagger-loadtester.test/
        metadata:
` + metadata
	}
	tests := []struct {
		name, metadata string
		wantOut        string // the metadata lines after conversion; "" when unchanged
		wantFinding    string
	}{
		{
			name:     "no type",
			metadata: "          cmd: \"hey -z 1m -q 10 -c 2 -m POST -H 'Content-Type: application/json' -d '{\\\"a\\\": 1}' http://app-canary.test/api\"\n",
			wantOut: `          type: "http-load"
          url: "http://app-canary.test/api"
          rate: "20"
          duration: "2m"
          concurrency: "2"
          method: "POST"
          headers: "{\"Content-Type\":\"application/json\"}"
          body: "{\"a\": 1}"
          timeout: "20s"
`,
			wantFinding: "note: Canary app: the hey command became an http-load task: duration 2m (hey's 1m) spans the analysis",
		},
		{
			name:     "type cmd before, single-quoted command",
			metadata: "          type: cmd\n          cmd: 'hey -z 5m -q 5 -c 1 http://app-canary.test/'\n",
			wantOut: `          type: http-load
          url: "http://app-canary.test/"
          rate: "5"
          duration: "5m"
          concurrency: "1"
          timeout: "20s"
`,
			wantFinding: "note: Canary app: the hey command became an http-load task",
		},
		{
			name:     "type bash after, plain command",
			metadata: "          cmd: hey -z 5m -q 5 -c 1 http://app-canary.test/\n          type: \"bash\"\n",
			wantOut: `          url: "http://app-canary.test/"
          rate: "5"
          duration: "5m"
          concurrency: "1"
          timeout: "20s"
          type: "http-load"
`,
		},
		{
			name:        "flow mapping",
			metadata:    "          {cmd: \"hey -z 5m -q 5 -c 1 http://app-canary.test/\"}\n",
			wantFinding: `warning: Canary app: the hey command is not written on one line of a block mapping, so it is not rewritten: replace metadata with {type: "http-load", url: "http://app-canary.test/", rate: "5", duration: "5m", concurrency: "1", timeout: "20s"}`,
		},
		{
			name:        "comment after the command",
			metadata:    "          cmd: \"hey -z 5m -q 5 -c 1 http://app-canary.test/\" # load\n",
			wantFinding: "warning: Canary app: the hey command is not written on one line of a block mapping",
		},
		{
			name:        "hey that needs a shell",
			metadata:    "          cmd: \"hey -z 1m http://app-canary.test/ > /tmp/out\"\n",
			wantFinding: "warning: Canary app: Flagger ran type cmd through sh -c; Sluice runs it split on blanks, without a shell, and this command needs one: set metadata.type: bash",
		},
		{
			name:        "hey Sluice cannot express",
			metadata:    "          cmd: \"hey -z 1m -x http://proxy:3128 http://app-canary.test/\"\n",
			wantFinding: "warning: Canary app: the hey command cannot become an http-load task (-x (an HTTP proxy) has no http-load equivalent)",
		},
		{
			name:        "plain command",
			metadata:    "          cmd: \"curl -sf http://app-canary.test/healthz\"\n",
			wantFinding: "action: Canary app: the load tester refuses command tasks unless started with --enable-shell-tasks and the line allow-listed: add `- {\"exact\":\"curl -sf http://app-canary.test/healthz\"}` under commands: in its --shell-allow-file",
		},
		{
			name:        "bash command",
			metadata:    "          type: bash\n          cmd: \"curl -s http://app-canary.test/ | grep ok\"\n",
			wantFinding: "add `- {\"exact\":\"curl -s http://app-canary.test/ | grep ok\",\"shell\":true}`",
		},
		{
			name:        "helm",
			metadata:    "          type: helm\n          cmd: \"test app -n test\"\n",
			wantFinding: "add `- {\"exact\":\"helm test app -n test\"}`",
		},
		{
			name:        "helmv3",
			metadata:    "          type: helmv3\n          cmd: \"test app -n test\"\n",
			wantFinding: "warning: Canary app: load tester task type helmv3 is type helm in Sluice: set metadata.type: helm",
		},
		{
			name:        "kubectl",
			metadata:    "          type: kubectl\n          cmd: \"-n test rollout status deploy/app\"\n",
			wantFinding: "add `- {\"exact\":\"kubectl -n test rollout status deploy/app\"}`",
		},
		{
			name:        "unknown type",
			metadata:    "          type: ngrinder\n          cmd: \"start\"\n",
			wantFinding: "warning: Canary app: load tester task type ngrinder has no equivalent in Sluice's load tester",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			in := canary(tt.metadata)
			res, err := ConvertFlagger("in.yaml", []byte(in))
			g.Expect(err).NotTo(HaveOccurred())
			want := strings.Replace(canary(tt.metadata), "flagger.app/v1beta1", "sluice.dev/v1beta1", 1)
			if tt.wantOut != "" {
				want = strings.Replace(want, tt.metadata, tt.wantOut, 1)
			}
			g.Expect(string(res.Output)).To(Equal(want))
			if tt.wantFinding != "" {
				var all []string
				for _, f := range res.Findings {
					all = append(all, f.String())
				}
				g.Expect(strings.Join(all, "\n")).To(ContainSubstring(tt.wantFinding))
			}
			if tt.wantOut != "" {
				tasks := loadTasks(t, res.Output)
				g.Expect(tasks).To(HaveLen(1))
				_, err := loadtester.ParseLoadSpec(tasks[0], defaultLimits)
				g.Expect(err).NotTo(HaveOccurred())
			}
		})
	}
}

// FuzzHeyToHTTPLoad: any command line either is refused with an error or
// gives http-load metadata the load tester accepts (with limits wide
// enough for any number) that carries hey's URL, method, headers and body.
func FuzzHeyToHTTPLoad(f *testing.F) {
	for _, s := range []string{
		"hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/",
		`hey -m POST -H 'X-A: b' -d "{\"k\": 1}" -T application/json http://a.test/p?q=1`,
		"hey -n 50 -t 0 -host h.example.com -a u:p https://a.test/",
		"hey -z=30s --c 3 -q 0.5 -disable-keepalive -- http://a.test/",
		`curl -s 'http://a' | grep x`,
	} {
		f.Add(s)
	}
	wide := loadtester.LoadLimits{MaxDuration: 1 << 62, MaxSyncDuration: time.Minute, MaxRate: 1 << 30, MaxConcurrency: 1 << 30, MaxRuns: 1}
	f.Fuzz(func(t *testing.T, line string) {
		argv, err := splitCommandLine(line)
		if err != nil || !isHey(argv) {
			return
		}
		l, err := parseHey(argv[1:])
		if err != nil {
			return
		}
		fields, _ := httpLoadFields(l, 0)
		md := map[string]string{"type": sluiceHTTPLoad}
		for _, kv := range fields {
			md[kv[0]] = kv[1]
		}
		spec, err := loadtester.ParseLoadSpec(md, wide)
		if err != nil {
			if l.Rate > 1<<30 || l.Concurrency > 1<<30 {
				return
			}
			t.Fatalf("%q gave metadata the load tester refuses: %v (%v)", line, err, md)
		}
		if spec.Method != l.Method {
			t.Fatalf("method %q, want %q", spec.Method, l.Method)
		}
		if utf8.ValidString(l.Body) && spec.Body != l.Body {
			t.Fatalf("body %q, want %q", spec.Body, l.Body)
		}
		for k, v := range l.Headers {
			if utf8.ValidString(k+v) && spec.Headers.Get(k) != v {
				t.Fatalf("header %s %q, want %q", k, spec.Headers.Get(k), v)
			}
		}
	})
}
