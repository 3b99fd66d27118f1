//go:build e2e

package e2e

import (
	"context"
	"fmt"
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
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/e2e/stack"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// The fleet repository of scenario 15, one app promoted from staging to
// production:
//
//	base/                    the app: a Deployment of <registry>/org/web:1.0.0
//	overlays/staging/        its namespace in the stack's cluster, a Gateway API Canary
//	                         with request-success-rate, images: web 1.0.0
//	overlays/production/     its namespace in the production cluster, the same
//	                         Canary (its own Gateway, Traefik and Prometheus),
//	                         images: web 1.0.0
//
// The overlays start with the tag alone, as a team adopting promotion has
// them: the Pipeline's first bundle (1.0.0 pinned by its digest) is then a
// real change, released and verified in each stage like any other. (An
// overlay that already pinned the first bundle would get no commit: the
// write finds the change there and records the branch's head, which
// started no release, so the stage would wait for a verdict that never
// comes.)

// promoProductionNamespace is the app's namespace in the production cluster.
const promoProductionNamespace = "web-production"

func promoFleetFiles(image, stagingNS, host, prodHost string) map[string]string {
	overlay := func(ns string) string {
		return fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: %s
resources:
  - ../../base
  - canary.yaml
images:
  - name: %s
    newTag: 1.0.0
`, ns, image)
	}
	return map[string]string{
		"base/kustomization.yaml": "resources: [deployment.yaml]\n",
		// No VERSION or ERROR_RATE: the stack's pods answer with the tag of
		// their image and fail as the test declared that image fails.
		"base/deployment.yaml": fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: app
          image: %s:1.0.0
          ports: [{name: http, containerPort: %d}]
`, image, stack.AppPort),
		"overlays/staging/kustomization.yaml":    overlay(stagingNS),
		"overlays/staging/canary.yaml":           promoCanary(host),
		"overlays/production/kustomization.yaml": overlay(promoProductionNamespace),
		// Production verifies as staging does, on its own live traffic:
		// the cluster's data plane (e2e/stack.DataPlane) has a Gateway of
		// the same name and its own Prometheus.
		"overlays/production/canary.yaml": promoCanary(prodHost),
	}
}

// promoCanary is the app's Canary in each stage: the Gateway API router on
// the cluster's Gateway, one step at 50 %, and request-success-rate over
// the live traffic to host.
func promoCanary(host string) string {
	return fmt.Sprintf(`apiVersion: sluice.dev/v1beta1
kind: Canary
metadata:
  name: web
spec:
  provider: gatewayapi:v1
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  progressDeadlineSeconds: 120
  service:
    port: %d
    targetPort: %d
    hosts: [%q]
    gatewayRefs:
      - name: %s
        namespace: %s
  analysis:
    interval: 4s
    threshold: 2
    stepWeight: 50
    maxWeight: 50
    metrics:
      - name: request-success-rate
        interval: 15s
        thresholdRange:
          min: 99
`, stack.AppPort, stack.AppPort, host, stack.GatewayName, stack.GatewayNamespace)
}

// promoRegistry is go-containerregistry's OCI registry on loopback.
type promoRegistry struct {
	srv *httptest.Server
	// image is the repository promoted: <host:port>/org/web.
	image string
}

func startPromoRegistry(t *testing.T) *promoRegistry {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return &promoRegistry{srv: srv, image: strings.TrimPrefix(srv.URL, "http://") + "/org/web"}
}

// push pushes a new random image as tag and returns its digest.
func (r *promoRegistry) push(g Gomega, tag string) string {
	img, err := random.Image(512, 1)
	g.Expect(err).NotTo(HaveOccurred())
	ref, err := name.NewTag(r.image+":"+tag, name.Insecure)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(remote.Write(ref, img)).To(Succeed())
	d, err := img.Digest()
	g.Expect(err).NotTo(HaveOccurred())
	return d.String()
}

// promoCommit is a promotion commit of the fleet repository.
type promoCommit struct {
	sha      string
	when     time.Time
	author   string
	message  string
	trailers map[string][]string
}

func (c promoCommit) trailer(key string) string {
	if v := c.trailers[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// promotionCommits are the commits that touched path whose author is not
// the test, oldest first, with their trailers as git reads them.
func promotionCommits(g Gomega, repo *testenv.GitRepo, path string) []promoCommit {
	out, err := repo.Git("log", "--reverse", "--format=%H", "--author=Sluice Promotion", "--", path)
	g.Expect(err).NotTo(HaveOccurred())
	var commits []promoCommit
	for _, sha := range strings.Fields(out) {
		c := promoCommit{sha: sha, trailers: map[string][]string{}}
		meta, err := repo.Git("show", "-s", "--format=%an%n%cI", sha)
		g.Expect(err).NotTo(HaveOccurred())
		an, ci, _ := strings.Cut(meta, "\n")
		c.author = an
		c.when, err = time.Parse(time.RFC3339, ci)
		g.Expect(err).NotTo(HaveOccurred())
		c.message, err = repo.Git("show", "-s", "--format=%B", sha)
		g.Expect(err).NotTo(HaveOccurred())
		trailers, err := repo.Git("show", "-s", "--format=%(trailers:only,unfold)", sha)
		g.Expect(err).NotTo(HaveOccurred())
		for _, line := range strings.Split(trailers, "\n") {
			if k, v, ok := strings.Cut(line, ": "); ok {
				c.trailers[k] = append(c.trailers[k], v)
			}
		}
		commits = append(commits, c)
	}
	return commits
}

// bundlesOf lists the Sluice-Bundle of each commit, marking rollbacks.
func bundlesOf(commits []promoCommit) []string {
	out := make([]string, 0, len(commits))
	for _, c := range commits {
		b := c.trailer("Sluice-Bundle")
		if c.trailer("Sluice-Rollback") == "true" {
			b += " (rollback)"
		}
		out = append(out, b)
	}
	return out
}

// pipelineStage reads the status of a stage of the Pipeline.
func pipelineStage(ctx context.Context, g Gomega, c client.Client, key client.ObjectKey, stage string) sluicev1beta1.PipelineStageStatus {
	p := &sluicev1beta1.Pipeline{}
	g.Expect(c.Get(ctx, key, p)).To(Succeed())
	for _, s := range p.Status.Stages {
		if s.Name == stage {
			return s
		}
	}
	return sluicev1beta1.PipelineStageStatus{}
}

// bundleOfTag is the id of the Pipeline's bundle whose image has tag.
func bundleOfTag(ctx context.Context, g Gomega, c client.Client, key client.ObjectKey, tag string) string {
	p := &sluicev1beta1.Pipeline{}
	g.Expect(c.Get(ctx, key, p)).To(Succeed())
	for _, b := range p.Status.Bundles {
		if len(b.Images) == 1 && b.Images[0].Tag == tag {
			return b.ID
		}
	}
	return ""
}

// primaryImage is the image the primary of the web Canary of ns serves.
func primaryImage(ctx context.Context, g Gomega, c client.Client, ns string) string {
	d := &appsv1.Deployment{}
	g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-primary"}, d)).To(Succeed())
	return d.Spec.Template.Spec.Containers[0].Image
}

// pipelineEvents are the notes of the events of reason on the Pipeline.
func pipelineEvents(ctx context.Context, g Gomega, c client.Client, key client.ObjectKey, reason string) []string {
	list := &eventsv1.EventList{}
	g.Expect(c.List(ctx, list, client.InNamespace(key.Namespace))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Kind == "Pipeline" && e.Regarding.Name == key.Name && e.Reason == reason {
			out = append(out, e.Type+" "+e.Note)
		}
	}
	return out
}
