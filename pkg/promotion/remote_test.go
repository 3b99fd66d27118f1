package promotion_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// Production's Canary lives on another control plane, read through a
// kubeconfig Secret: its verdict there verifies the bundle here. A
// kubeconfig with an exec plugin is refused, and the stage says its Canary
// cannot be found rather than running the plugin.
func TestReconciler_CanaryOnAnotherCluster(t *testing.T) {
	f := newFixture(t)
	g := f.g
	remote, err := testenv.Start(scheme)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = remote.Stop() })
	path := filepath.Join(t.TempDir(), "kubeconfig")
	g.Expect(remote.WriteAdminKubeconfig(path)).To(Succeed())
	kubeconfig, err := os.ReadFile(path)
	g.Expect(err).NotTo(HaveOccurred())
	remoteNS, err := remote.Namespace(f.ctx, "production")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(remote.Client.Create(f.ctx, newCanary(remoteNS, "web"))).To(Succeed())
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "production-kubeconfig"}, Data: map[string][]byte{"value": kubeconfig}}
	g.Expect(f.env.Client.Create(f.ctx, secret)).To(Succeed())

	f.pipeline(func(p *sluicev1beta1.Pipeline) {
		p.Spec.Stages[1].CanaryRef = sluicev1beta1.PipelineCanaryRef{Name: "web", Namespace: remoteNS,
			KubeConfig: &sluicev1beta1.GitSyncKubeConfig{SecretRef: sluicev1beta1.GitSyncKubeConfigSecretRef{Name: "production-kubeconfig"}}}
	})
	f.push("1.1.0")
	t0 := time.Now().UTC().Truncate(time.Second)
	f.reconcile(f.r, t0)
	stagingCommit := f.head()
	f.release("web-staging", stagingCommit, "web-staging-1", sluicev1beta1.DeliveryPromoted, t0.Add(time.Second))
	f.reconcile(f.r, t0.Add(2*time.Second))
	prod := stageOf(f.get(), "production")
	g.Expect(prod.State).To(Equal(sluicev1beta1.StageCommitted))
	g.Expect(prod.Commit).To(Equal(f.head()))

	// The remote Canary promotes the release of production's commit.
	c := &sluicev1beta1.Canary{}
	g.Expect(remote.Client.Get(f.ctx, types.NamespacedName{Namespace: remoteNS, Name: "web"}, c)).To(Succeed())
	src := "main@sha1:" + prod.Commit
	c.Status.Source = &sluicev1beta1.ReleaseSource{GitSyncName: "production", GitSyncNamespace: remoteNS, Revision: src, Release: "web-1"}
	c.Status.Delivery = &sluicev1beta1.DeliveryStatus{Releases: []sluicev1beta1.DeliveryRecord{{
		Revision: "web-1", SourceRevision: src, StartTime: metav1.NewTime(t0), EndTime: &metav1.Time{Time: t0.Add(3 * time.Second)},
		Outcome: sluicev1beta1.DeliveryPromoted,
	}}}
	g.Expect(remote.Client.Status().Update(f.ctx, c)).To(Succeed())
	f.reconcile(f.r, t0.Add(4*time.Second))
	g.Expect(stageOf(f.get(), "production").State).To(Equal(sluicev1beta1.StageVerified))

	// An exec plugin in the kubeconfig is refused: a newer bundle reaches
	// production, whose Canary then cannot be read.
	exec := strings.Replace(string(kubeconfig), "users:\n", "users:\n- name: plugin\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n      args: [-c, 'touch /tmp/pwned-by-promotion']\n", 1)
	g.Expect(f.env.Client.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: "production-kubeconfig"}, secret)).To(Succeed())
	secret.Data["value"] = []byte(exec)
	g.Expect(f.env.Client.Update(f.ctx, secret)).To(Succeed())
	f.push("1.2.0")
	f.reconcile(f.r, t0.Add(time.Minute))
	f.release("web-staging", f.head(), "web-staging-2", sluicev1beta1.DeliveryPromoted, t0.Add(time.Minute+time.Second))
	f.reconcile(f.r, t0.Add(time.Minute+2*time.Second)) // commits to production
	f.reconcile(f.r, t0.Add(time.Minute+3*time.Second)) // reads its Canary
	prod = stageOf(f.get(), "production")
	g.Expect(prod.State).To(Equal(sluicev1beta1.StageCommitted))
	g.Expect(prod.Reason).To(Equal(sluicev1beta1.PipelineReasonCanaryNotFound))
	g.Expect("/tmp/pwned-by-promotion").NotTo(BeAnExistingFile())
	g.Expect(f.logs.String()).To(ContainSubstring("exec"))
}
