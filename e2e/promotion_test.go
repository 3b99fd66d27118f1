//go:build e2e

package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/e2e/stack"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// promoScan is the Pipeline's scan interval: a pushed tag is committed to
// the first stage within one.
const promoScan = 10 * time.Second

// TestPromotion_StagingToProduction is scenario 15, the acceptance of issue
// 18: images pushed to an OCI registry go through Git to staging (the
// stack's cluster, live traffic through Traefik, request-success-rate), and
// what staging verified goes to production (a second control plane with a
// data plane of its own, live traffic through its own Traefik measured by
// its own Prometheus, whose Sluice runs the Pipeline and reads staging's
// Canary through a kubeconfig Secret), by commits that name their
// provenance.
//
//  1. 1.1.0 pushed: committed to staging within a scan interval, released
//     and promoted there with real traffic, then pinned by the same digest
//     in production and promoted there;
//  2. 1.2.0, whose pods fail half their requests, is rolled back in
//     staging: the stage shows the failed bundle and why, a Warning event
//     says so, and production never gets a commit for it;
//  3. with a manual gate on production, 1.3.0 waits there until approved
//     with sluice.dev/approve; sluice.dev/rollback-to then brings
//     production back to 1.1.0 through a commit;
//  4. the promoting manager is killed while staging's canary promotes
//     (and started once that is over, before production's commit), and
//     again while production's canary releases: no promotion is lost and
//     each stage's path gets exactly one commit per bundle.
func TestPromotion_StagingToProduction(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	// Given a registry holding web 1.0.0
	reg := startPromoRegistry(t)
	digests := map[string]string{"1.0.0": reg.push(g, "1.0.0")}
	pinned := func(tag string) string { return reg.image + ":" + tag + "@" + digests[tag] }

	// and two clusters, each with Traefik and Prometheus: staging, the
	// stack's, and production, whose Sluice runs the promotion
	prod, err := env.StartClusterWith(ctx, "production", stack.ClusterOptions{DataPlane: true},
		"--enable-promotion", "--promotion-insecure-loopback-registries",
		"--promotion-author-name=Sluice Promotion", "--promotion-author-email=promotion@sluice.test")
	g.Expect(err).NotTo(HaveOccurred())
	promoter := prod.Manager
	logs := func() string { return "promoting manager:\n" + tail(readFile(promoter.Log), 8000) }
	stagingNS, err := env.Namespace(ctx, "scenario15")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(prod.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: promoProductionNamespace}})).To(Succeed())
	host := "web." + stagingNS + ".example.com"
	prodHost := "web." + promoProductionNamespace + ".example.com"

	// and a fleet repository with a staging and a production overlay,
	// which promotion may push to
	srv, err := testenv.StartGitServer(t.TempDir(), "", "")
	g.Expect(err).NotTo(HaveOccurred())
	defer srv.Close()
	repo, err := srv.NewRepo("fleet")
	g.Expect(err).NotTo(HaveOccurred())
	for _, kv := range [][2]string{{"http.receivepack", "true"}, {"receive.denyCurrentBranch", "updateInstead"}} {
		_, err := repo.Git("config", kv[0], kv[1])
		g.Expect(err).NotTo(HaveOccurred())
	}
	_, err = repo.Write("fleet: web 1.0.0 in staging and production", promoFleetFiles(reg.image, stagingNS, host, prodHost))
	g.Expect(err).NotTo(HaveOccurred())

	// and one GitSync per cluster
	g.Expect(env.Client.Create(ctx, promoGitSync(stagingNS, "staging", repo.URL))).To(Succeed())
	g.Expect(prod.Client.Create(ctx, promoGitSync(stack.ManagerNamespace, "production", repo.URL))).To(Succeed())
	stagingKey := client.ObjectKey{Namespace: stagingNS, Name: "web"}
	prodKey := client.ObjectKey{Namespace: promoProductionNamespace, Name: "web"}
	waitPhase(ctx, g, stagingKey, sluicev1beta1.CanaryPhaseInitialized, 2*time.Minute)
	waitRemotePhase(ctx, g, prod.Client, prodKey, logs, sluicev1beta1.CanaryPhaseInitialized)

	// and live traffic to staging through Traefik
	load, err := env.StartLoad(ctx, stack.LoadOptions{Host: host, RPS: 20, Duration: 14 * time.Minute})
	g.Expect(err).NotTo(HaveOccurred())
	defer load.Stop()
	g.Eventually(func() int { return load.Counts().ByVersion["1.0.0"] }, 30*time.Second, 200*time.Millisecond).
		Should(BeNumerically(">=", 20), "web 1.0.0 does not answer through Traefik: %s", load.Counts())
	// and to production through production's Traefik
	prodLoad, err := prod.StartLoad(ctx, stack.LoadOptions{Host: prodHost, RPS: 20, Duration: 14 * time.Minute})
	g.Expect(err).NotTo(HaveOccurred())
	defer prodLoad.Stop()
	g.Eventually(func() int { return prodLoad.Counts().ByVersion["1.0.0"] }, 30*time.Second, 200*time.Millisecond).
		Should(BeNumerically(">=", 20), "web 1.0.0 does not answer through production's Traefik: %s", prodLoad.Counts())
	// (the canary is the Deployment web, the released version web-primary:
	// answers from web <version> are the canary's, during analysis)
	canaryAnswers := func(version string) int { return prodLoad.Counts().ByWorkload["web "+version] }

	// and a Pipeline in production that reads staging's Canary through a
	// kubeconfig of the stack's cluster
	kubeconfig, err := os.ReadFile(env.Kubeconfig)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(prod.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: stack.ManagerNamespace, Name: "staging-kubeconfig"},
		Data:       map[string][]byte{"value": kubeconfig},
	})).To(Succeed())
	// that alerts the on-call channel (a local fake Slack) of failures
	slack := newFakeSlack()
	defer slack.Close()
	slack.provideIn(ctx, g, prod.Client, stack.ManagerNamespace)
	pipe := promoPipeline(reg.image, repo.URL, stagingNS)
	pipe.Spec.Alerts = []sluicev1beta1.PipelineAlert{{Name: "on-call",
		ProviderRef: sluicev1beta1.CrossNamespaceReference{Name: "on-call"}, EventSeverity: "error"}}
	pipeKey := client.ObjectKeyFromObject(pipe)
	g.Expect(prod.Client.Create(ctx, pipe)).To(Succeed())
	s := promoStages{ctx: ctx, c: prod.Client, key: pipeKey, logs: logs}

	// Then the images deployed by tag are pinned, through both stages: the
	// first bundle, 1.0.0 by its digest, is verified in staging, then in
	// production.
	b10 := s.bundle(g, "1.0.0")
	s.waitVerified(g, "production", b10, 4*time.Minute)
	g.Expect(primaryImage(ctx, g, env.Client, stagingNS)).To(Equal(pinned("1.0.0")))
	g.Expect(primaryImage(ctx, g, prod.Client, promoProductionNamespace)).To(Equal(pinned("1.0.0")))
	g.Expect(canaryAnswers("1.0.0")).To(BeNumerically(">", 0), "production's canary never served 1.0.0: %s", prodLoad.Counts())

	// (1) When 1.1.0 is pushed
	digests["1.1.0"] = reg.push(g, "1.1.0")
	pushed := time.Now()

	// Then within one scan interval a commit pins it in staging's overlay
	var staged promoCommit
	g.Eventually(func(g Gomega) {
		commits := promotionCommits(g, repo, "overlays/staging")
		g.Expect(commits).NotTo(BeEmpty())
		staged = commits[len(commits)-1]
		g.Expect(staged.trailer("Sluice-Image")).To(Equal("web=" + pinned("1.1.0")))
	}, promoScan+15*time.Second, 500*time.Millisecond).Should(Succeed(), logs)
	t.Logf("1.1.0 committed to staging %s after the push", time.Since(pushed).Round(time.Second))
	g.Expect(staged.when).To(BeTemporally("<=", pushed.Add(promoScan+5*time.Second)),
		"the commit came more than a scan interval after the push")
	b11 := s.bundle(g, "1.1.0")
	g.Expect(staged.trailer("Sluice-Bundle")).To(Equal(b11))

	// and staging's canary releases it with real traffic; the promoting
	// manager is down while the canary promotes it (killed at the canary's
	// last step, started again once the release succeeded): production's
	// commit comes from the status, not from memory
	waitRemoteWeight(ctx, g, env.Client, stagingKey, 50)
	promoter.Kill()
	waitPhase(ctx, g, stagingKey, sluicev1beta1.CanaryPhaseSucceeded, 2*time.Minute)
	g.Expect(load.Counts().ByVersion["1.1.0"]).To(BeNumerically(">", 0), "the staging canary never served 1.1.0")
	g.Expect(primaryImage(ctx, g, env.Client, stagingNS)).To(Equal(pinned("1.1.0")))
	g.Expect(bundlesOf(promotionCommits(g, repo, "overlays/production"))).To(Equal([]string{b10}),
		"production got a commit while the promoting manager was down")
	g.Expect(promoter.Start(ctx)).To(Succeed())

	// Then production's overlay receives a commit pinning the same digest,
	// which says where it was verified
	var promoted promoCommit
	g.Eventually(func(g Gomega) {
		commits := promotionCommits(g, repo, "overlays/production")
		g.Expect(commits).To(HaveLen(2))
		promoted = commits[1]
	}, 2*time.Minute, 500*time.Millisecond).Should(Succeed(), logs)
	g.Expect(promoted.trailer("Sluice-Image")).To(Equal("web=" + pinned("1.1.0")))
	g.Expect(promoted.trailer("Sluice-Source-Stage")).To(Equal("staging"))
	g.Expect(promoted.trailer("Sluice-Verified-By")).To(And(ContainSubstring(stagingNS+"/web release"), ContainSubstring(staged.sha[:12])))
	g.Expect(s.stage(g, "staging").State).To(Equal(sluicev1beta1.StageVerified))

	// and production's canary promotes it, though the promoting manager
	// (which also runs production's canary engine) crashes mid-release
	waitRemotePhase(ctx, g, prod.Client, prodKey, logs, sluicev1beta1.CanaryPhaseProgressing)
	g.Expect(promoter.Restart(ctx, true)).To(Succeed())
	s.waitVerified(g, "production", b11, 3*time.Minute)
	g.Expect(primaryImage(ctx, g, prod.Client, promoProductionNamespace)).To(Equal(pinned("1.1.0")))
	// with live traffic: production's canary answered requests during its
	// analysis
	g.Expect(canaryAnswers("1.1.0")).To(BeNumerically(">", 0), "production's canary never served 1.1.0: %s", prodLoad.Counts())

	// (no request failed so far: every release of the good images was smooth)
	g.Expect(load.Counts().ByCode[500]).To(BeZero(), "a request failed before 1.2.0: %s", load.Counts())
	g.Expect(prodLoad.Counts().ByCode[500]).To(BeZero(), "a request to production failed before 1.2.0: %s", prodLoad.Counts())

	// (2) When 1.2.0, an image whose pods fail half their requests, is pushed
	env.Pods.SetImageErrorRate(reg.image+":1.2.0", 0.5)
	prod.DataPlane.Pods.SetImageErrorRate(reg.image+":1.2.0", 0.5)
	digests["1.2.0"] = reg.push(g, "1.2.0")

	// Then staging's analysis rolls it back under live traffic
	b12 := s.bundle(g, "1.2.0")
	s.waitState(g, "staging", b12, sluicev1beta1.StageFailed, 3*time.Minute)
	failed := s.stage(g, "staging")
	g.Expect(failed.Reason).To(Equal(sluicev1beta1.PipelineReasonVerificationFailed))
	g.Expect(failed.Message).To(And(ContainSubstring("rolled back"), ContainSubstring(b12), ContainSubstring("Analysis")))
	waitPhase(ctx, g, stagingKey, sluicev1beta1.CanaryPhaseFailed, time.Minute)
	g.Expect(primaryImage(ctx, g, env.Client, stagingNS)).To(Equal(pinned("1.1.0")))
	g.Expect(load.Counts().ByCode[500]).To(BeNumerically(">", 0), "1.2.0 never failed a request")
	// and a Warning event says so
	g.Eventually(func(g Gomega) []string {
		return pipelineEvents(ctx, g, prod.Client, pipeKey, sluicev1beta1.PipelineReasonVerificationFailed)
	}, 30*time.Second, time.Second).Should(ContainElement(And(HavePrefix("Warning"), ContainSubstring(b12))))
	// and an alert, once
	failedAlerts := func() []string {
		var out []string
		for _, m := range slack.Messages() {
			if strings.Contains(m, "Verification failed") && strings.Contains(m, b12) {
				out = append(out, m)
			}
		}
		return out
	}
	g.Eventually(failedAlerts, 30*time.Second, time.Second).Should(HaveLen(1))
	// and production never gets a commit for it, over more than a scan
	g.Consistently(func(g Gomega) {
		g.Expect(bundlesOf(promotionCommits(g, repo, "overlays/production"))).To(Equal([]string{b10, b11}))
		g.Expect(s.stage(g, "production").Bundle).To(Equal(b11))
	}, promoScan+5*time.Second, time.Second).Should(Succeed())
	g.Expect(failedAlerts()).To(HaveLen(1), "the failure was alerted again")

	// (3) When production gets a manual gate and 1.3.0 is pushed
	g.Expect(prod.Client.Get(ctx, pipeKey, pipe)).To(Succeed())
	pipe.Spec.Stages[1].Approval = sluicev1beta1.ApprovalManual
	g.Expect(prod.Client.Update(ctx, pipe)).To(Succeed())
	digests["1.3.0"] = reg.push(g, "1.3.0")

	// Then staging verifies it and production holds it at the gate
	b13 := s.bundle(g, "1.3.0")
	s.waitVerified(g, "staging", b13, 3*time.Minute)
	g.Eventually(func(g Gomega) {
		gate := s.stage(g, "production").Gate
		g.Expect(gate).NotTo(BeNil())
		g.Expect(gate.Bundle).To(Equal(b13))
		g.Expect(gate.Reason).To(Equal(sluicev1beta1.PipelineReasonWaitingForApproval))
		g.Expect(gate.Message).To(ContainSubstring(sluicev1beta1.PipelineApproveAnnotation + "=production/" + b13))
	}, promoScan+20*time.Second, time.Second).Should(Succeed(), logs)
	g.Consistently(func(g Gomega) []string {
		return bundlesOf(promotionCommits(g, repo, "overlays/production"))
	}, promoScan+2*time.Second, time.Second).Should(Equal([]string{b10, b11}), "1.3.0 passed the manual gate")

	// When it is approved
	s.annotate(g, sluicev1beta1.PipelineApproveAnnotation, "production/"+b13)

	// Then production gets it and verifies it
	s.waitVerified(g, "production", b13, 3*time.Minute)
	g.Expect(primaryImage(ctx, g, prod.Client, promoProductionNamespace)).To(Equal(pinned("1.3.0")))
	g.Expect(canaryAnswers("1.3.0")).To(BeNumerically(">", 0), "production's canary never served 1.3.0: %s", prodLoad.Counts())

	// When production is rolled back to 1.1.0
	before := canaryAnswers("1.1.0")
	s.annotate(g, sluicev1beta1.PipelineRollbackAnnotation, "production/"+b11)

	// Then a commit brings it back, and production's canary releases it
	s.waitVerified(g, "production", b11, 3*time.Minute)
	g.Expect(s.stage(g, "production").Rollback).To(BeTrue())
	g.Expect(primaryImage(ctx, g, prod.Client, promoProductionNamespace)).To(Equal(pinned("1.1.0")))
	g.Expect(canaryAnswers("1.1.0")).To(BeNumerically(">", before),
		"production's canary served no 1.1.0 during the rollback's release: %s", prodLoad.Counts())
	// and production never failed a request: 1.2.0 never reached it
	g.Expect(prodLoad.Counts().ByCode[500]).To(BeZero(), "a request to production failed: %s", prodLoad.Counts())
	rollback := promotionCommits(g, repo, "overlays/production")
	g.Expect(rollback).NotTo(BeEmpty())
	last := rollback[len(rollback)-1]
	g.Expect(last.trailer("Sluice-Rollback")).To(Equal("true"))
	g.Expect(last.trailer("Sluice-Image")).To(Equal("web=" + pinned("1.1.0")))
	g.Expect(last.message).To(ContainSubstring("olled back on request"))

	// (4) And after both restarts, each stage's path has exactly one commit
	// per bundle written there (the rollback writes 1.1.0 a second time, on
	// request), every one naming its provenance
	stagingCommits := promotionCommits(g, repo, "overlays/staging")
	prodCommits := promotionCommits(g, repo, "overlays/production")
	g.Expect(bundlesOf(stagingCommits)).To(Equal([]string{b10, b11, b12, b13}))
	g.Expect(bundlesOf(prodCommits)).To(Equal([]string{b10, b11, b13, b11 + " (rollback)"}))
	for _, cm := range append(stagingCommits, prodCommits...) {
		g.Expect(cm.trailer("Sluice-Pipeline")).To(Equal(pipeKey.String()), cm.message)
		g.Expect(cm.trailer("Sluice-Stage")).NotTo(BeEmpty(), cm.message)
		g.Expect(cm.trailer("Sluice-Image")).To(MatchRegexp(`^web=.+:[0-9.]+@sha256:[0-9a-f]{64}$`), cm.message)
	}
	for _, cm := range prodCommits[:3] {
		g.Expect(cm.trailer("Sluice-Source-Stage")).To(Equal("staging"), cm.message)
		g.Expect(cm.trailer("Sluice-Verified-By")).To(ContainSubstring(stagingNS+"/web release"), cm.message)
	}
}

// promoGitSync syncs overlays/<stage> of the fleet repository.
func promoGitSync(ns, stage, url string) *sluicev1beta1.GitSync {
	return &sluicev1beta1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: stage},
		Spec: sluicev1beta1.GitSyncSpec{
			URL:      url,
			Path:     "overlays/" + stage,
			Interval: &metav1.Duration{Duration: 2 * time.Second},
		},
	}
}

// promoPipeline promotes the registry's web from staging (written by URL,
// its Canary read through the staging-kubeconfig Secret) to production
// (written where production's GitSync reads, its Canary local).
func promoPipeline(image, url, stagingNS string) *sluicev1beta1.Pipeline {
	return &sluicev1beta1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Namespace: stack.ManagerNamespace, Name: "web"},
		Spec: sluicev1beta1.PipelineSpec{
			Sources: []sluicev1beta1.PipelineSource{{
				Name: "web", Image: image,
				Interval: &metav1.Duration{Duration: promoScan},
				Policy:   &sluicev1beta1.ImagePolicy{Semver: ">=1.0.0 <2.0.0"},
			}},
			Stages: []sluicev1beta1.PipelineStage{{
				Name: "staging",
				Git:  sluicev1beta1.PipelineGit{URL: url, Branch: "main", Path: "overlays/staging"},
				CanaryRef: sluicev1beta1.PipelineCanaryRef{Name: "web", Namespace: stagingNS,
					KubeConfig: &sluicev1beta1.GitSyncKubeConfig{SecretRef: sluicev1beta1.GitSyncKubeConfigSecretRef{Name: "staging-kubeconfig"}}},
			}, {
				Name:      "production",
				Git:       sluicev1beta1.PipelineGit{GitSyncRef: &sluicev1beta1.PipelineObjectRef{Name: "production"}, Path: "overlays/production"},
				CanaryRef: sluicev1beta1.PipelineCanaryRef{Name: "web", Namespace: promoProductionNamespace},
			}},
		},
	}
}

// promoStages reads and annotates the scenario's Pipeline.
type promoStages struct {
	ctx  context.Context
	c    client.Client
	key  client.ObjectKey
	logs func() string
}

func (s promoStages) stage(g Gomega, name string) sluicev1beta1.PipelineStageStatus {
	return pipelineStage(s.ctx, g, s.c, s.key, name)
}

// bundle waits until the Pipeline found the bundle of tag and returns its id.
func (s promoStages) bundle(g Gomega, tag string) string {
	var id string
	g.Eventually(func(g Gomega) string {
		id = bundleOfTag(s.ctx, g, s.c, s.key, tag)
		return id
	}, promoScan+15*time.Second, 500*time.Millisecond).ShouldNot(BeEmpty(), func() string { return "no bundle of " + tag + "; " + s.logs() })
	return id
}

func (s promoStages) waitState(g Gomega, stage, bundle string, state sluicev1beta1.StageState, timeout time.Duration) {
	var st sluicev1beta1.PipelineStageStatus
	g.Eventually(func(g Gomega) {
		st = s.stage(g, stage)
		g.Expect(st.Bundle).To(Equal(bundle))
		g.Expect(st.State).To(Equal(state))
	}, timeout, 500*time.Millisecond).Should(Succeed(), func() string {
		return "stage " + stage + " never reached " + string(state) + " with " + bundle + ": " + st.Reason + ": " + st.Message + "\n" + s.logs()
	})
}

func (s promoStages) waitVerified(g Gomega, stage, bundle string, timeout time.Duration) {
	s.waitState(g, stage, bundle, sluicev1beta1.StageVerified, timeout)
}

// annotate sets a request annotation on the Pipeline, as kubectl annotate --overwrite does.
func (s promoStages) annotate(g Gomega, key, value string) {
	p := &sluicev1beta1.Pipeline{}
	g.Expect(s.c.Get(s.ctx, s.key, p)).To(Succeed())
	patch := client.MergeFrom(p.DeepCopy())
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[key] = value
	g.Expect(s.c.Patch(s.ctx, p, patch)).To(Succeed())
}

// waitRemotePhase waits until the Canary key of cluster c is in phase.
func waitRemotePhase(ctx context.Context, g Gomega, c client.Client, key client.ObjectKey, logs func() string, phase sluicev1beta1.CanaryPhase) {
	cd := &sluicev1beta1.Canary{}
	g.Eventually(func() sluicev1beta1.CanaryPhase {
		_ = c.Get(ctx, key, cd)
		return cd.Status.Phase
	}, 3*time.Minute, 200*time.Millisecond).Should(Equal(phase), func() string {
		return "Canary " + key.String() + " never " + string(phase) + "; " + logs()
	})
}

// waitRemoteWeight waits until the Canary key of cluster c sends weight %
// to its canary.
func waitRemoteWeight(ctx context.Context, g Gomega, c client.Client, key client.ObjectKey, weight int32) {
	cd := &sluicev1beta1.Canary{}
	g.Eventually(func() int32 {
		_ = c.Get(ctx, key, cd)
		return cd.Status.CanaryWeight
	}, 2*time.Minute, 100*time.Millisecond).Should(BeNumerically(">=", weight), func() string {
		return "Canary " + key.String() + " never reached its last step: " + string(cd.Status.Phase) + "\n" + env.ManagerLogs(6000)
	})
}
