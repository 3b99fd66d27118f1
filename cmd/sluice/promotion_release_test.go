package main

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// TestRun_APushedTagIsVerifiedByTheEngine: the whole manager, with GitSync,
// the canary engine and promotion: a tag pushed to the registry is
// committed to the stage's directory, GitSync applies the commit, the
// engine releases and promotes it, and the Pipeline takes that release's
// verdict as the bundle's verification.
func TestRun_APushedTagIsVerifiedByTheEngine(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns, err := env.Namespace(ctx, "promote")
	g.Expect(err).NotTo(HaveOccurred())

	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	image := strings.TrimPrefix(reg.URL, "http://") + "/org/web"

	srv, err := testenv.StartGitServer(t.TempDir(), "", "")
	g.Expect(err).NotTo(HaveOccurred())
	defer srv.Close()
	repo, err := srv.NewRepo("apps")
	g.Expect(err).NotTo(HaveOccurred())
	for _, kv := range [][2]string{{"http.receivepack", "true"}, {"receive.denyCurrentBranch", "updateInstead"}} {
		_, err := repo.Git("config", kv[0], kv[1])
		g.Expect(err).NotTo(HaveOccurred())
	}
	marked := strings.Replace(webYAML("1.0"), "image: ghcr.io/example/web:1.0", "image: "+image+":1.0.0 # {\"$promotion\": \"web:web\"}", 1)
	_, err = repo.Write("web 1.0.0", map[string]string{"web/deployment.yaml": marked, "web/canary.yaml": webCanaryYAML})
	g.Expect(err).NotTo(HaveOccurred())

	opts := DefaultOptions()
	opts.skipNameValidation = true
	opts.LeaderElect = false
	opts.MetricsAddr, opts.ProbeAddr = "0", freeAddr(t)
	opts.GitURL, opts.GitPath, opts.GitInterval = repo.URL, "web", time.Second
	opts.GitSyncNamespace = ns
	opts.GitCacheDir = t.TempDir()
	opts.EnablePromotion, opts.PromotionInsecureLocal = true, true
	g.Expect(opts.Validate()).To(Succeed())
	done := make(chan error, 1)
	go func() { done <- run(ctx, opts, env.Config) }()

	phase := func() sluicev1beta1.CanaryPhase {
		c := &sluicev1beta1.Canary{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, c); err != nil {
			return sluicev1beta1.CanaryPhase(err.Error())
		}
		return c.Status.Phase
	}
	g.Eventually(phase, 90*time.Second, 200*time.Millisecond).Should(Equal(sluicev1beta1.CanaryPhaseInitialized))

	p := &sluicev1beta1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: sluicev1beta1.PipelineSpec{
			Sources: []sluicev1beta1.PipelineSource{{Name: "web", Image: image, Interval: &metav1.Duration{Duration: 10 * time.Second},
				Policy: &sluicev1beta1.ImagePolicy{Semver: ">=1.0.0"}}},
			Stages: []sluicev1beta1.PipelineStage{{
				Name:      "staging",
				Git:       sluicev1beta1.PipelineGit{GitSyncRef: &sluicev1beta1.PipelineObjectRef{Name: opts.GitSyncName}, Path: "web", Change: sluicev1beta1.GitChangeSetters},
				CanaryRef: sluicev1beta1.PipelineCanaryRef{Name: "web"},
			}},
		},
	}
	img, err := random.Image(256, 1)
	g.Expect(err).NotTo(HaveOccurred())
	tag, err := name.NewTag(image + ":1.1.0")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(remote.Write(tag, img)).To(Succeed())
	digest, err := img.Digest()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(env.Client.Create(ctx, p)).To(Succeed())

	stage := func() sluicev1beta1.PipelineStageStatus {
		_ = env.Client.Get(ctx, client.ObjectKeyFromObject(p), p)
		if len(p.Status.Stages) == 0 {
			return sluicev1beta1.PipelineStageStatus{}
		}
		return p.Status.Stages[0]
	}
	g.Eventually(func() string { return stage().Commit }, 30*time.Second, 200*time.Millisecond).ShouldNot(BeEmpty())
	commit := stage().Commit
	head, err := repo.Git("rev-parse", "main")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(commit).To(Equal(head))

	// GitSync applies the commit to the canary workload, the engine
	// promotes it, and the Pipeline reads that verdict.
	g.Eventually(func() sluicev1beta1.StageState { return stage().State }, 120*time.Second, 250*time.Millisecond).Should(Equal(sluicev1beta1.StageVerified))
	d := &appsv1.Deployment{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-primary"}, d)).To(Succeed())
	g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal(image + ":1.1.0@" + digest.String()))
	c := &sluicev1beta1.Canary{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, c)).To(Succeed())
	g.Expect(c.Status.Delivery).NotTo(BeNil())
	last := c.Status.Delivery.Releases[len(c.Status.Delivery.Releases)-1]
	g.Expect(last.SourceRevision).To(Equal("main@sha1:" + commit))
	g.Expect(last.Outcome).To(Equal(sluicev1beta1.DeliveryPromoted))
	g.Expect(stage().Release).To(Equal(last.Revision))
	cancel()
	g.Eventually(done, 15*time.Second).Should(Receive(BeNil()))
}
