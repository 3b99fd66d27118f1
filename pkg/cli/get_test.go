package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// rows splits a table into its rows of whitespace-separated cells.
func rows(out string) [][]string {
	var rs [][]string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		rs = append(rs, strings.Fields(l))
	}
	return rs
}

func TestGet_CanariesTableInANamespaceAndAcrossNamespaces(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	a, b := namespace(t), namespace(t)
	newCanary(t, a, "podinfo", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseProgressing, CanaryWeight: 20, FailedChecks: 1, Revision: "5d8f7c"})
	newCanary(t, a, "backend", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseSucceeded, Revision: "a1b2c3"},
		func(c *sluicev1beta1.Canary) { c.Spec.Suspend = true })
	newCanary(t, b, "frontend", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseFailed, Revision: "ffee00", FailedChecks: 3})

	r := kubectlSluice(ctx, "", "get", "-n", a)
	g.Expect(r.err).NotTo(HaveOccurred())
	got := rows(r.out.String())
	g.Expect(got).To(HaveLen(3))
	g.Expect(got[0]).To(Equal([]string{"NAME", "PHASE", "WEIGHT", "FAILED", "REVISION", "AGE"}))
	// The API server lists by name: backend, podinfo. The AGE column is the last cell.
	g.Expect(got[1][:len(got[1])-1]).To(Equal([]string{"backend", "Succeeded", "(suspended)", "0", "0/3", "a1b2c3"}))
	g.Expect(got[2][:len(got[2])-1]).To(Equal([]string{"podinfo", "Progressing", "20", "1/3", "5d8f7c"}))

	r = kubectlSluice(ctx, "", "get", "canaries", "--all-namespaces")
	g.Expect(r.err).NotTo(HaveOccurred())
	got = rows(r.out.String())
	g.Expect(got[0]).To(Equal([]string{"NAMESPACE", "NAME", "PHASE", "WEIGHT", "FAILED", "REVISION", "AGE"}))
	g.Expect(r.out.String()).To(ContainSubstring(a))
	var frontend []string
	for _, row := range got {
		if row[0] == b {
			frontend = row
		}
	}
	g.Expect(frontend).NotTo(BeNil(), "the -A table lists namespace %s:\n%s", b, r.out.String())
	g.Expect(frontend[1:6]).To(Equal([]string{"frontend", "Failed", "0", "3/3", "ffee00"}))

	empty := namespace(t)
	r = kubectlSluice(ctx, "", "get", "-n", empty)
	g.Expect(r.err).NotTo(HaveOccurred())
	g.Expect(r.out.String()).To(BeEmpty())
	g.Expect(r.errOut.String()).To(ContainSubstring("No canaries found in namespace " + empty))
}

func TestGet_OneCanaryAsYAMLAndAListAsJSON(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	newCanary(t, ns, "podinfo", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseProgressing, CanaryWeight: 30})

	r := kubectlSluice(ctx, "", "get", "canary", "podinfo", "-n", ns, "-o", "yaml")
	g.Expect(r.err).NotTo(HaveOccurred())
	var c sluicev1beta1.Canary
	g.Expect(yaml.UnmarshalStrict([]byte(r.out.String()), &c)).To(Succeed())
	g.Expect(c.APIVersion).To(Equal("sluice.dev/v1beta1"))
	g.Expect(c.Kind).To(Equal("Canary"))
	g.Expect(c.Name).To(Equal("podinfo"))
	g.Expect(c.Status.CanaryWeight).To(Equal(int32(30)))
	g.Expect(c.ManagedFields).To(BeEmpty())

	r = kubectlSluice(ctx, "", "get", "cnry", "-n", ns, "-o", "json")
	g.Expect(r.err).NotTo(HaveOccurred())
	var list sluicev1beta1.CanaryList
	g.Expect(json.Unmarshal([]byte(r.out.String()), &list)).To(Succeed())
	g.Expect(list.Kind).To(Equal("CanaryList"))
	g.Expect(list.Items).To(HaveLen(1))
	g.Expect(list.Items[0].Kind).To(Equal("Canary"))
	g.Expect(list.Items[0].Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseProgressing))
}

func TestGet_GitSyncs(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	gs := newGitSync(t, ns, "apps", false)
	newGitSync(t, ns, "infra", true)
	gs.Status.LastAppliedRevision = "main@sha1:0123456789abcdef0123456789abcdef01234567"
	gs.Status.Conditions = []metav1.Condition{{
		Type: sluicev1beta1.ReadyCondition, Status: metav1.ConditionTrue, Reason: "Succeeded",
		Message: "applied revision main@sha1:0123", LastTransitionTime: metav1.NewTime(time.Now()),
	}}
	g.Expect(env.Client.Status().Update(ctx, gs)).To(Succeed())

	r := kubectlSluice(ctx, "", "get", "gitsyncs", "-n", ns)
	g.Expect(r.err).NotTo(HaveOccurred())
	got := rows(r.out.String())
	g.Expect(got).To(HaveLen(3))
	g.Expect(got[0]).To(Equal([]string{"NAME", "READY", "REVISION", "SUSPENDED", "AGE", "MESSAGE"}))
	g.Expect(got[1][:4]).To(Equal([]string{"apps", "True", gs.Status.LastAppliedRevision, "false"}))
	g.Expect(strings.Join(got[1][5:], " ")).To(Equal("applied revision main@sha1:0123"))
	g.Expect(got[2][:4]).To(Equal([]string{"infra", "Unknown", "-", "true"}))

	r = kubectlSluice(ctx, "", "get", "gs", "apps", "-n", ns, "-o", "json")
	g.Expect(r.err).NotTo(HaveOccurred())
	var one sluicev1beta1.GitSync
	g.Expect(json.Unmarshal([]byte(r.out.String()), &one)).To(Succeed())
	g.Expect(one.Kind).To(Equal("GitSync"))
	g.Expect(one.Spec.URL).To(Equal("https://git.example.com/apps.git"))
}

func TestGet_BadInputIsExplained(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "deployments"}, `unknown resource type "deployments": use canaries`},
		{[]string{"get", "-o", "xml"}, `unknown output format "xml"`},
		{[]string{"get", "canary", "missing", "-n", ns}, "Canary missing not found in namespace " + ns},
		{[]string{"get", "canary", "x", "-A"}, "cannot be combined with --all-namespaces"},
		{[]string{"status", "missing", "-n", ns}, "Canary missing not found in namespace " + ns},
		{[]string{"status"}, "status takes exactly one Canary NAME"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := kubectlSluice(ctx, "", tt.args...)
			NewWithT(t).Expect(r.err).To(MatchError(ContainSubstring(tt.want)))
		})
	}
}
