package promotion_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitwrite"
	"github.com/sluice-cd/sluice/pkg/imagescan"
	"github.com/sluice-cd/sluice/pkg/promotion"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

const (
	gitUser     = "promoter"
	gitPassword = "s3cret-git-password"
)

// fixture is a real API server, an OCI registry in process, a Git server
// with a repository holding the staging and production overlays, and a
// reconciler driven one reconcile at a time.
type fixture struct {
	t        *testing.T
	g        Gomega
	ctx      context.Context
	env      *testenv.Environment
	ns       string
	registry string // host:port
	repo     *testenv.GitRepo
	image    string // registry/web
	r        *promotion.Reconciler
	logs     logs
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, g: NewWithT(t), env: controlPlane(t)}
	f.ctx = ctrl.LoggerInto(context.Background(), f.logger())
	var err error
	f.ns, err = f.env.Namespace(f.ctx, "promotion")
	f.g.Expect(err).NotTo(HaveOccurred())

	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	f.registry = strings.TrimPrefix(reg.URL, "http://")
	f.image = f.registry + "/org/web"

	srv, err := testenv.StartGitServer(t.TempDir(), gitUser, gitPassword)
	f.g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(srv.Close)
	f.repo, err = srv.NewRepo("deploy")
	f.g.Expect(err).NotTo(HaveOccurred())
	overlay := fmt.Sprintf("resources:\n  - ../base\nimages:\n  - name: %s\n    newTag: 1.0.0\n", f.image)
	_, err = f.repo.Write("overlays", map[string]string{
		"deploy/base/kustomization.yaml":       "resources: []\n",
		"deploy/staging/kustomization.yaml":    overlay,
		"deploy/production/kustomization.yaml": overlay,
	})
	f.g.Expect(err).NotTo(HaveOccurred())
	// http-backend refuses pushes without an authenticated REMOTE_USER
	// unless told; a non-bare repository updates its work tree on push.
	for _, kv := range [][2]string{{"http.receivepack", "true"}, {"receive.denyCurrentBranch", "updateInstead"}} {
		_, err = f.repo.Git("config", kv[0], kv[1])
		f.g.Expect(err).NotTo(HaveOccurred())
	}

	// The Git credentials, read by the reconciler from the API server.
	f.g.Expect(f.env.Client.Create(f.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "git"},
		Data:       map[string][]byte{"username": []byte(gitUser), "password": []byte(gitPassword)},
	})).To(Succeed())
	// Staging writes where its GitSync reads (no GitSync controller runs
	// here: the reconciler only reads its URL, branch and secret).
	f.g.Expect(f.env.Client.Create(f.ctx, &sluicev1beta1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "staging"},
		Spec: sluicev1beta1.GitSyncSpec{
			URL: f.repo.URL, Ref: &sluicev1beta1.GitRef{Branch: "main"}, Path: "deploy/staging",
			SecretRef: &corev1.LocalObjectReference{Name: "git"},
		},
	})).To(Succeed())
	for _, c := range []string{"web-staging", "web-production"} {
		f.g.Expect(f.env.Client.Create(f.ctx, newCanary(f.ns, c))).To(Succeed())
	}

	clientset, err := kubernetes.NewForConfig(f.env.Config)
	f.g.Expect(err).NotTo(HaveOccurred())
	broadcaster := events.NewEventBroadcasterAdapter(clientset)
	stop := make(chan struct{})
	broadcaster.StartRecordingToSink(stop)
	t.Cleanup(func() { close(stop); broadcaster.Shutdown() })
	f.r = f.reconciler(broadcaster.NewRecorder("sluice-promotion"))
	return f
}

// reconciler is a new reconciler, as a restarted manager builds it.
func (f *fixture) reconciler(rec events.EventRecorder) *promotion.Reconciler {
	return &promotion.Reconciler{
		Client: f.env.Client, APIReader: f.env.Client,
		Scanner:                    imagescan.NewRegistryScanner(),
		Writer:                     &gitwrite.Writer{Identity: gitwrite.Identity{Name: "Sluice", Email: "sluice@example.com"}},
		Recorder:                   rec,
		InsecureLoopbackRegistries: true,
	}
}

func newCanary(ns, name string) *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sluicev1beta1.CanarySpec{
			Provider:  sluicev1beta1.ProviderKubernetes,
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			Service:   sluicev1beta1.CanaryService{Port: 80, TargetPort: intstr.FromInt32(8080)},
			Analysis:  &sluicev1beta1.CanaryAnalysis{Interval: &metav1.Duration{Duration: time.Second}, Threshold: 2, Iterations: 2},
		},
	}
}

// pipeline creates the Pipeline: web from the registry, staging through
// its GitSync, production through a URL and a secret.
func (f *fixture) pipeline(mutate ...func(*sluicev1beta1.Pipeline)) *sluicev1beta1.Pipeline {
	p := &sluicev1beta1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "web"},
		Spec: sluicev1beta1.PipelineSpec{
			Sources: []sluicev1beta1.PipelineSource{{
				Name: "web", Image: f.image, Interval: &metav1.Duration{Duration: 10 * time.Second},
				Policy: &sluicev1beta1.ImagePolicy{Semver: ">=1.0.0 <2.0.0"},
			}},
			Stages: []sluicev1beta1.PipelineStage{
				{
					Name:      "staging",
					Git:       sluicev1beta1.PipelineGit{GitSyncRef: &sluicev1beta1.PipelineObjectRef{Name: "staging"}, Path: "deploy/staging"},
					CanaryRef: sluicev1beta1.PipelineCanaryRef{Name: "web-staging"},
				},
				{
					Name: "production",
					Git: sluicev1beta1.PipelineGit{URL: f.repo.URL, Branch: "main", Path: "deploy/production",
						SecretRef: &corev1.LocalObjectReference{Name: "git"}},
					CanaryRef: sluicev1beta1.PipelineCanaryRef{Name: "web-production"},
				},
			},
		},
	}
	for _, m := range mutate {
		m(p)
	}
	f.g.Expect(f.env.Client.Create(f.ctx, p)).To(Succeed())
	return p
}

// push pushes a random image under a tag and returns its digest.
func (f *fixture) push(tag string) string {
	f.t.Helper()
	img, err := random.Image(256, 1)
	f.g.Expect(err).NotTo(HaveOccurred())
	ref, err := name.NewTag(f.image + ":" + tag)
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(remote.Write(ref, img)).To(Succeed())
	d, err := img.Digest()
	f.g.Expect(err).NotTo(HaveOccurred())
	return d.String()
}

// reconcile runs one reconcile of the Pipeline with r at time now.
func (f *fixture) reconcile(r *promotion.Reconciler, now time.Time) ctrl.Result {
	f.t.Helper()
	r.Now = func() time.Time { return now }
	res, err := r.Reconcile(f.ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: f.ns, Name: "web"}})
	f.g.Expect(err).NotTo(HaveOccurred())
	return res
}

func (f *fixture) get() *sluicev1beta1.Pipeline {
	f.t.Helper()
	p := &sluicev1beta1.Pipeline{}
	f.g.Expect(f.env.Client.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: "web"}, p)).To(Succeed())
	return p
}

func stageOf(p *sluicev1beta1.Pipeline, name string) sluicev1beta1.PipelineStageStatus {
	for _, s := range p.Status.Stages {
		if s.Name == name {
			return s
		}
	}
	return sluicev1beta1.PipelineStageStatus{}
}

func (f *fixture) git(args ...string) string {
	f.t.Helper()
	out, err := f.repo.Git(args...)
	f.g.Expect(err).NotTo(HaveOccurred())
	return out
}

func (f *fixture) head() string { return f.git("rev-parse", "main") }

func (f *fixture) commits() string { return f.git("rev-list", "--count", "main") }

// release writes a Canary's status the way the engine does when a release
// started by a GitSync revision ends with outcome.
func (f *fixture) release(canary, commit, revision string, outcome sluicev1beta1.DeliveryOutcome, at time.Time) {
	f.t.Helper()
	c := &sluicev1beta1.Canary{}
	f.g.Expect(f.env.Client.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: canary}, c)).To(Succeed())
	src := "main@sha1:" + commit
	c.Status.Source = &sluicev1beta1.ReleaseSource{GitSyncName: "staging", GitSyncNamespace: f.ns, Revision: src, Release: revision}
	rec := sluicev1beta1.DeliveryRecord{
		Revision: revision, SourceRevision: src, StartTime: metav1.NewTime(at.Add(-time.Minute)),
		EndTime: &metav1.Time{Time: at}, Outcome: outcome,
	}
	if outcome == sluicev1beta1.DeliveryRolledBack {
		rec.Cause = sluicev1beta1.RollbackAnalysis
	}
	if c.Status.Delivery == nil {
		c.Status.Delivery = &sluicev1beta1.DeliveryStatus{}
	}
	c.Status.Delivery.Releases = append(c.Status.Delivery.Releases, rec)
	f.g.Expect(f.env.Client.Status().Update(f.ctx, c)).To(Succeed())
}

// logs collects what the reconcilers log, to check that no secret is in it.
type logs struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (f *fixture) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		f.logs.mu.Lock()
		defer f.logs.mu.Unlock()
		f.logs.b.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 1})
}
