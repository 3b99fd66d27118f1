package v1beta1_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// validPipeline is the base of the invalid Pipelines of invalidPipelines:
// two stages, one through a GitSync, one through a URL with pull requests,
// a manual gate, a window and a soak.
const validPipeline = `
apiVersion: sluice.dev/v1beta1
kind: Pipeline
metadata: {name: invalid}
spec:
  sources:
    - name: web
      image: registry.example.com/org/web
      secretRef: {name: registry-credentials}
      interval: 1m
      policy: {semver: ">=1.0.0 <2.0.0"}
  stages:
    - name: staging
      git:
        gitSyncRef: {name: staging}
        path: deploy/staging
      canaryRef: {name: web, namespace: staging}
      soakTime: 10m
    - name: production
      git:
        url: https://git.example.com/org/deploy.git
        branch: main
        secretRef: {name: git-credentials}
        path: deploy/production
        change: Setters
        push: {strategy: PullRequest, provider: gitea, secretRef: {name: gitea-token}}
      canaryRef:
        name: web
        namespace: production
        kubeConfig: {secretRef: {name: production-kubeconfig}}
      approval: Manual
      windows:
        - {days: [Monday, Tuesday, Wednesday, Thursday, Friday], start: "09:00", end: "16:00", timeZone: Europe/Paris}
`

// TestPipeline_ValidManifestsAccepted checks the defaults and shapes close
// to the rules of invalidPipelines that the API server must accept.
func TestPipeline_ValidManifestsAccepted(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	t.Run("base is valid and defaulted", func(t *testing.T) {
		g := NewWithT(t)
		u := decode(t, validPipeline)
		u.SetName("valid")
		u.SetNamespace(ns)
		g.Expect(env.Client.Create(ctx, u, strict)).To(Succeed())
		p := &sluicev1beta1.Pipeline{}
		g.Expect(env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "valid"}, p)).To(Succeed())
		g.Expect(p.Spec.Stages[0].Approval).To(Equal(sluicev1beta1.ApprovalAutomatic))
		g.Expect(p.Spec.Stages[0].Git.Change).To(Equal(sluicev1beta1.GitChangeKustomizeImages))
		g.Expect(p.Spec.Stages[0].SoakTime.Duration).To(Equal(10 * time.Minute))
		g.Expect(p.Spec.Stages[1].Approval).To(Equal(sluicev1beta1.ApprovalManual))
	})
	variants := [][]mutation{
		// A regexp policy with extract and numerical order.
		{set("spec.sources.0.policy", yamlValue(`{pattern: '^main-[a-f0-9]+-(?P<ts>[0-9]+)$', extract: '$ts', order: Numerical}`))},
		// Windows: a whole day, every day, UTC, a zone with three parts, Etc/GMT+5.
		{set("spec.stages.1.windows", yamlValue(`[{start: "00:00", end: "24:00"}, {start: "09:00", end: "09:01", timeZone: UTC}, {days: [Sunday], start: "10:00", end: "12:00", timeZone: America/Argentina/Buenos_Aires}, {start: "01:00", end: "02:00", timeZone: Etc/GMT+5}]`))},
		// Soak bounds.
		{set("spec.stages.0.soakTime", "0s")},
		{set("spec.stages.0.soakTime", "168h")},
		// A soak with metrics on a local Canary; None spelled out beside a remote one.
		{set("spec.stages.0.soakChecks", "Metrics")},
		{set("spec.stages.1.soakChecks", "None")},
		// A hold; direct push spelled out; github and gitlab.
		{set("spec.stages.0.hold", yamlValue(`{reason: "incident 42: pinned to 1.1.0"}`)), set("spec.stages.0.git.push", yamlValue(`{strategy: Direct}`))},
		{set("spec.stages.1.git.push.provider", "github")},
		{set("spec.stages.1.git.push.provider", "gitlab"), set("spec.stages.1.git.url", "ssh://git@gitlab.example.com/org/deploy.git")},
		// Local Git on loopback, as in tests.
		{set("spec.stages.1.git.url", "http://127.0.0.1:8080/org/deploy.git")},
		// Two sources.
		{set("spec.sources", yamlValue(`[{name: web, image: ghcr.io/org/web, policy: {semver: "1.x"}}, {name: worker, image: ghcr.io/org/worker, policy: {semver: "~1.4"}}]`))},
		// Alerts: one to every event, one to the failures, a provider in another namespace.
		{set("spec.alerts", yamlValue(`[{name: team, providerRef: {name: slack}}, {name: oncall, providerRef: {name: pager, namespace: ops}, eventSeverity: error}]`))},
	}
	for i, mutate := range variants {
		g := NewWithT(t)
		u := decode(t, validPipeline)
		for _, m := range mutate {
			m(u.Object)
		}
		u.SetName("variant-" + strconv.Itoa(i))
		u.SetNamespace(ns)
		g.Expect(env.Client.Create(ctx, u, strict)).To(Succeed(), "variant %d", i)
	}
}
