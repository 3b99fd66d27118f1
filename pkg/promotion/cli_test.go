package promotion_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/cli"
)

// lockedBuffer is written by a command while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// kubectlSluice runs the plugin against the fixture's API server in the
// background while the test reconciles, as the manager would, until the
// command returns; it returns what the command printed.
func (f *fixture) kubectlSluice(at time.Time, args ...string) string {
	f.t.Helper()
	cfg := clientcmdapi.NewConfig()
	rc := f.env.Config
	cfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: rc.Host, CertificateAuthorityData: rc.CAData}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: rc.CertData, ClientKeyData: rc.KeyData, Token: rc.BearerToken}
	cfg.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin", Namespace: f.ns}
	cfg.CurrentContext = "envtest"
	path := filepath.Join(f.t.TempDir(), "kubeconfig")
	f.g.Expect(clientcmd.WriteToFile(*cfg, path)).To(Succeed())

	out, errOut := &lockedBuffer{}, &lockedBuffer{}
	cmd := cli.NewRootCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut}, "test")
	cmd.SetArgs(append([]string{"--kubeconfig", path}, args...))
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(context.Background()) }()
	for {
		select {
		case err := <-done:
			f.g.Expect(err).NotTo(HaveOccurred(), "kubectl sluice %s: %s", strings.Join(args, " "), errOut.String())
			return out.String()
		case <-time.After(200 * time.Millisecond):
			// The reconcile that follows an annotation change.
			f.reconcile(f.r, at)
		}
	}
}

// Acceptance 3 of issue 18, through kubectl sluice and the real
// reconciler: a manual gate on production holds 1.3.0 until promote-stage
// approves it; rollback-stage brings production back to 1.1.0 through a commit.
func TestReconciler_PromoteStageAndRollbackStageCommands(t *testing.T) {
	f := newFixture(t)
	g := f.g
	f.pipeline(func(p *sluicev1beta1.Pipeline) { p.Spec.Stages[1].Approval = sluicev1beta1.ApprovalManual })
	t0 := time.Now().UTC().Truncate(time.Second)

	// through runs a tag through staging (promoted) up to production's gate.
	through := func(tag string, at time.Time) string {
		f.push(tag)
		f.reconcile(f.r, at)
		st := stageOf(f.get(), "staging")
		g.Expect(st.State).To(Equal(sluicev1beta1.StageCommitted), tag)
		f.release("web-staging", st.Commit, "web-staging-"+tag, sluicev1beta1.DeliveryPromoted, at.Add(time.Second))
		f.reconcile(f.r, at.Add(2*time.Second))
		gate := stageOf(f.get(), "production").Gate
		g.Expect(gate).NotTo(BeNil(), tag)
		g.Expect(gate.Reason).To(Equal(sluicev1beta1.PipelineReasonWaitingForApproval))
		return gate.Bundle
	}
	// approve approves the waiting bundle with the command, and production's Canary promotes it.
	approve := func(id, tag string, at time.Time) {
		before := f.commits()
		out := f.kubectlSluice(at, "promote-stage", "web", "production", "--wait", "--timeout", "30s")
		g.Expect(out).To(ContainSubstring("pipeline " + f.ns + "/web: promote-stage requested (sluice.dev/approve=production/" + id + ")\n"))
		g.Expect(out).To(ContainSubstring("pipeline " + f.ns + "/web: approved; stage production is Committed with bundle " + id + "\n"))
		g.Expect(f.commits()).NotTo(Equal(before))
		g.Expect(f.git("show", "main:deploy/production/kustomization.yaml")).To(ContainSubstring("newTag: " + tag))
		f.release("web-production", stageOf(f.get(), "production").Commit, "web-production-"+tag, sluicev1beta1.DeliveryPromoted, at.Add(time.Second))
		f.reconcile(f.r, at.Add(2*time.Second))
		g.Expect(stageOf(f.get(), "production").State).To(Equal(sluicev1beta1.StageVerified))
	}

	b110 := through("1.1.0", t0)
	g.Expect(f.git("show", "main:deploy/production/kustomization.yaml")).To(ContainSubstring("newTag: 1.0.0"), "the gate holds it")
	approve(b110, "1.1.0", t0.Add(5*time.Second))

	b130 := through("1.3.0", t0.Add(20*time.Second))
	approve(b130, "1.3.0", t0.Add(25*time.Second))

	// Roll production back: the default is the bundle verified before, 1.1.0.
	before := f.commits()
	out := f.kubectlSluice(t0.Add(30*time.Second), "rollback-stage", "web", "production", "--wait", "--timeout", "30s")
	g.Expect(out).To(ContainSubstring("(sluice.dev/rollback-to=production/" + b110 + ")\n"))
	g.Expect(out).To(ContainSubstring("pipeline " + f.ns + "/web: rolling back; stage production is Committed with bundle " + b110 + "\n"))
	g.Expect(f.commits()).NotTo(Equal(before))
	g.Expect(f.git("show", "main:deploy/production/kustomization.yaml")).To(ContainSubstring("newTag: 1.1.0"))
	g.Expect(f.git("log", "-1", "--format=%B", "main")).To(ContainSubstring("Sluice-Rollback: true"))

	// The status view names it.
	view := f.kubectlSluice(t0.Add(31*time.Second), "status", "pipeline", "web")
	g.Expect(view).To(ContainSubstring("Stage production (approval Manual)\n  Bundle:        " + b110 + " (web=" + f.image + ":1.1.0), written by a rollback\n"))
	f.expectNoSecret(true)
}
