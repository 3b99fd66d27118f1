package cli

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/convert/golden")

// convertCase is one input of the golden test.
type convertCase struct{ name, path string }

// convertCases are the hand-written cases of testdata/convert and every
// Flagger manifest of the API tests (api/v1beta1/testdata/flagger).
func convertCases(t *testing.T) []convertCase {
	t.Helper()
	var cases []convertCase
	own, _ := filepath.Glob(filepath.Join("testdata", "convert", "*.yaml"))
	for _, p := range own {
		cases = append(cases, convertCase{strings.TrimSuffix(filepath.Base(p), ".yaml"), p})
	}
	samples, _ := filepath.Glob(filepath.Join(env.Root, "api", "v1beta1", "testdata", "flagger", "*.yaml"))
	if len(own) < 6 || len(samples) < 6 {
		t.Fatalf("missing inputs: %d cases, %d Flagger samples", len(own), len(samples))
	}
	for _, p := range samples {
		rel, err := filepath.Rel(mustGetwd(t), p) // stable paths in the findings
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, convertCase{"flagger-" + strings.TrimSuffix(filepath.Base(p), ".yaml"), rel})
	}
	return cases
}

func mustGetwd(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

func TestConvert_GoldenOutputsAndFindings(t *testing.T) {
	ctx := context.Background()
	for _, tc := range convertCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			in, err := os.ReadFile(tc.path)
			g.Expect(err).NotTo(HaveOccurred())
			r := kubectlSluice(ctx, "", "convert", tc.path)
			g.Expect(r.err).NotTo(HaveOccurred())
			out, findings := r.out.String(), r.errOut.String()

			goldenOut := filepath.Join("testdata", "convert", "golden", tc.name+".yaml")
			goldenFindings := filepath.Join("testdata", "convert", "golden", tc.name+".findings")
			if *update {
				g.Expect(os.MkdirAll(filepath.Dir(goldenOut), 0o755)).To(Succeed())
				g.Expect(os.WriteFile(goldenOut, []byte(out), 0o644)).To(Succeed())
				g.Expect(os.WriteFile(goldenFindings, []byte(findings), 0o644)).To(Succeed())
			}
			wantOut, err := os.ReadFile(goldenOut)
			g.Expect(err).NotTo(HaveOccurred(), "run go test ./pkg/cli -run TestConvert -update to create the golden files")
			wantFindings, err := os.ReadFile(goldenFindings)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(Equal(string(wantOut)))
			g.Expect(findings).To(Equal(string(wantFindings)))

			expectOnlyAPIVersionsChanged(t, string(in), out)
			expectServerAgrees(t, out, findings)
		})
	}
}

// expectOnlyAPIVersionsChanged checks that every line is kept but the
// Flagger apiVersions, canaryAnalysis keys and hey tasks rewritten to
// http-load (checked by TestConvert_HeyBecomesHTTPLoad).
func expectOnlyAPIVersionsChanged(t *testing.T, in, out string) {
	t.Helper()
	g := NewWithT(t)
	inLines, outLines := withoutLoadTasks(strings.Split(in, "\n")), withoutLoadTasks(strings.Split(out, "\n"))
	inLines = withoutRemovedSourceMatches(inLines, outLines) // flagger_sourcematch_test.go
	g.Expect(outLines).To(HaveLen(len(inLines)), "the output keeps every line")
	for i := range inLines {
		if inLines[i] == outLines[i] {
			continue
		}
		back := strings.Replace(outLines[i], sluicev1beta1.GroupVersion.String(), FlaggerAPIVersion, 1)
		back = strings.Replace(back, "analysis:", "canaryAnalysis:", 1)
		g.Expect(back).To(Equal(inLines[i]), "line %d changed beyond the apiVersion", i+1)
	}
}

// rejection matches the findings that say the API server refuses an object.
var rejection = regexp.MustCompile(`: warning: (\w+) ([\w-]+): (rejected by the API|does not fit Sluice's schema)`)

// expectServerAgrees creates every converted object on the real API server
// (server-side dry run, strict field validation): exactly the objects that
// convert said would be rejected are rejected.
func expectServerAgrees(t *testing.T, out, findings string) {
	t.Helper()
	g := NewWithT(t)
	rejected := map[string]bool{}
	for _, m := range rejection.FindAllStringSubmatch(findings, -1) {
		rejected[m[1]+"/"+m[2]] = true
	}
	ns := namespace(t)
	created := 0
	for _, doc := range splitDocs(out) {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil || u.Object == nil {
			continue
		}
		objs := []*unstructured.Unstructured{u}
		if u.GetKind() == "List" {
			l, err := u.ToList()
			g.Expect(err).NotTo(HaveOccurred())
			objs = nil
			for i := range l.Items {
				objs = append(objs, &l.Items[i])
			}
		}
		for _, o := range objs {
			if o.GetAPIVersion() != sluicev1beta1.GroupVersion.String() {
				continue
			}
			o.SetNamespace(ns)
			o.SetResourceVersion("")
			err := env.Client.Create(context.Background(), o, client.DryRunAll, client.FieldValidation("Strict"))
			key := o.GetKind() + "/" + o.GetName()
			if rejected[key] {
				g.Expect(err).To(HaveOccurred(), "convert reported %s as rejected, the API server accepts it", key)
			} else {
				g.Expect(err).NotTo(HaveOccurred(), "the API server rejects %s, convert did not say so", key)
			}
			created++
		}
	}
	g.Expect(created).To(BeNumerically(">", 0), "every case converts at least one object")
	for key := range rejected {
		g.Expect(out).To(ContainSubstring("name: "+strings.SplitN(key, "/", 2)[1]), "rejected object %s is in the output", key)
	}
}

// splitDocs splits a YAML stream into documents.
func splitDocs(s string) []string {
	var docs []string
	for _, d := range regexp.MustCompile(`(?m)^---.*$`).Split(s, -1) {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, d)
		}
	}
	return docs
}

// TestConvert_EverySampleRoundTrips writes each Sluice sample of
// config/samples back as Flagger would have it and checks that convert
// returns the sample byte for byte; the GitSync, Sluice's own, passes through.
func TestConvert_EverySampleRoundTrips(t *testing.T) {
	samples, err := filepath.Glob(filepath.Join(env.Root, "config", "samples", "*.yaml"))
	if err != nil || len(samples) < 8 {
		t.Fatalf("expected the samples of config/samples, found %d: %v", len(samples), err)
	}
	flaggerKinds := regexp.MustCompile(`(?m)^kind: (Canary|MetricTemplate|AlertProvider)$`)
	for _, p := range samples {
		t.Run(filepath.Base(p), func(t *testing.T) {
			g := NewWithT(t)
			sample, err := os.ReadFile(p)
			g.Expect(err).NotTo(HaveOccurred())
			docs := strings.Split(string(sample), "\n---\n")
			flaggerDocs := 0
			for i, d := range docs {
				if flaggerKinds.MatchString(d) {
					docs[i] = strings.Replace(d, "apiVersion: sluice.dev/v1beta1", "apiVersion: "+FlaggerAPIVersion, 1)
					flaggerDocs++
				}
			}
			flagger := strings.Join(docs, "\n---\n")
			r := kubectlSluice(context.Background(), flagger, "convert", "-")
			g.Expect(r.err).NotTo(HaveOccurred())
			g.Expect(r.out.String()).To(Equal(string(sample)))
			g.Expect(r.errOut.String()).To(ContainSubstring("converted %d Flagger object(s) in 1 input(s)", flaggerDocs))
			g.Expect(r.errOut.String()).NotTo(ContainSubstring("rejected by the API"))
			if !flaggerKinds.Match(sample) {
				g.Expect(flagger).To(Equal(string(sample)), "a non-Flagger sample is given unchanged")
			}
		})
	}
}

func TestConvert_DirectoriesWriteAndStrict(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	dir := t.TempDir()
	g.Expect(os.MkdirAll(filepath.Join(dir, "apps", "podinfo"), 0o755)).To(Succeed())
	canary := "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata:\n  name: podinfo\nspec:\n  provider: appmesh\n" +
		"  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}\n  service: {port: 80}\n  analysis: {stepWeight: 5}\n"
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n"
	files := map[string]string{
		filepath.Join(dir, "apps", "podinfo", "canary.yml"): canary,
		filepath.Join(dir, "apps", "cm.yaml"):               cm,
		filepath.Join(dir, "README.md"):                     "apiVersion: flagger.app/v1beta1\n",
	}
	for p, c := range files {
		g.Expect(os.WriteFile(p, []byte(c), 0o600)).To(Succeed())
	}

	// To stdout: files in lexical order, separated by ---.
	r := kubectlSluice(ctx, "", "convert", dir)
	g.Expect(r.err).NotTo(HaveOccurred())
	g.Expect(r.out.String()).To(Equal(cm + "---\n" + strings.Replace(canary, FlaggerAPIVersion, "sluice.dev/v1beta1", 1)))
	g.Expect(r.errOut.String()).To(ContainSubstring(filepath.Join(dir, "apps", "podinfo", "canary.yml") + ":6: warning: Canary podinfo: Sluice has no router for provider appmesh"))

	// --strict fails on the warning; --write rewrites only the Flagger file, keeping its mode.
	r = kubectlSluice(ctx, "", "convert", "--strict", dir)
	g.Expect(ExitCode(r.err)).To(Equal(ExitFailed))
	r = kubectlSluice(ctx, "", "convert", "--write", dir)
	g.Expect(r.err).NotTo(HaveOccurred())
	g.Expect(r.out.String()).To(BeEmpty())
	got, err := os.ReadFile(filepath.Join(dir, "apps", "podinfo", "canary.yml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(got)).To(HavePrefix("apiVersion: sluice.dev/v1beta1\nkind: Canary\n"))
	info, err := os.Stat(filepath.Join(dir, "apps", "podinfo", "canary.yml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(info.Mode().Perm()).To(Equal(os.FileMode(0o600)))
	got, err = os.ReadFile(filepath.Join(dir, "README.md"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(got)).To(Equal(files[filepath.Join(dir, "README.md")]))

	for _, tt := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"convert"}, "", "convert needs at least one FILE, DIR, or - for stdin"},
		{[]string{"convert", "--write", "-"}, "", "--write cannot rewrite stdin"},
		{[]string{"convert", "-", "-"}, "", "stdin (-) can be given only once"},
		{[]string{"convert", filepath.Join(dir, "nope.yaml")}, "", "cannot read " + filepath.Join(dir, "nope.yaml")},
		{[]string{"convert", "-"}, "a: [1\n", "stdin: not valid YAML"},
	} {
		r := kubectlSluice(ctx, tt.stdin, tt.args...)
		g.Expect(r.err).To(MatchError(ContainSubstring(tt.want)), "%v", tt.args)
	}
}

func TestApplyEdits_RejectsAPositionThatDoesNotHoldTheText(t *testing.T) {
	g := NewWithT(t)
	out, err := applyEdits([]byte("a: é x\nb: y\n"), []edit{{line: 1, col: 6, old: "x", new: "z"}, {line: 2, col: 4, old: "y", new: "w"}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(out)).To(Equal("a: é z\nb: w\n"))
	_, err = applyEdits([]byte("a: b\n"), []edit{{line: 1, col: 4, old: "c", new: "d"}})
	g.Expect(err).To(MatchError(ContainSubstring(`expected "c" at column 4`)))
}

// loadTaskLine is a line of a load tester task's metadata that the hey
// rewrite may replace: a hey cmd, its type, and http-load's keys.
var loadTaskLine = regexp.MustCompile(`^\s*(cmd: "?hey .*|type: "?(cmd|bash|http-load)"?|(url|rate|duration|concurrency|method|headers|body|timeout): ".*")$`)

// withoutLoadTasks drops the lines of load tester task metadata that are
// inside a metadata block (after a "metadata:" line, until the indent drops).
func withoutLoadTasks(lines []string) []string {
	out := make([]string, 0, len(lines))
	inMetadata, indent := false, 0
	for _, l := range lines {
		lead := len(l) - len(strings.TrimLeft(l, " "))
		if inMetadata && lead <= indent {
			inMetadata = false
		}
		if inMetadata && loadTaskLine.MatchString(l) {
			continue
		}
		if strings.TrimSpace(l) == "metadata:" {
			inMetadata, indent = true, lead
		}
		out = append(out, l)
	}
	return out
}
