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

const validGitSync = `
apiVersion: sluice.dev/v1beta1
kind: GitSync
metadata: {name: invalid}
spec:
  url: https://git.example.com/org/repo.git
  ref: {branch: main}
  path: deploy/prod
  interval: 1m
  timeout: 30s
  secretRef: {name: git-credentials}
  targetNamespace: prod
`

// TestGitSync_ValidManifestsAccepted checks the defaults and the shapes the
// validation must accept; the invalid GitSyncs are in invalidGitSyncs.
func TestGitSync_ValidManifestsAccepted(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	t.Run("base is valid and defaulted", func(t *testing.T) {
		g := NewWithT(t)
		u := decode(t, validGitSync)
		u.SetName("valid")
		u.SetNamespace(ns)
		g.Expect(env.Client.Create(ctx, u, strict)).To(Succeed())
		gs := &sluicev1beta1.GitSync{}
		g.Expect(env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "valid"}, gs)).To(Succeed())
		g.Expect(gs.PruneEnabled()).To(BeTrue())
		g.Expect(gs.IntervalOrDefault()).To(Equal(time.Minute))
		g.Expect(gs.TimeoutOrDefault()).To(Equal(30 * time.Second))
	})
	t.Run("loopback http, ssh, semver, ref combinations and dotted names are valid", func(t *testing.T) {
		for i, m := range [][]mutation{
			{set("spec.url", "http://127.0.0.1:8080/repo.git")},
			{set("spec.url", "ssh://git@github.com/org/repo.git")},
			{set("spec.ref", map[string]any{"semver": ">=1.2.0 <2.0.0"})},
			{set("spec.ref", map[string]any{"semver": "~1.2"})},
			{set("spec.ref", map[string]any{"commit": "0123456789abcdef0123456789abcdef01234567"})},
			{set("spec.path", "./deploy/..prod/x..y")},
			{set("spec.ref", map[string]any{"branch": "release/1.2"})},
			{set("spec.ref", map[string]any{"branch": "feature/JIRA-12_x.y"})},
			{set("spec.ref", map[string]any{"tag": "v1.2.3-rc.1+build.5"})},
			{set("spec.ref", map[string]any{"branch": "main", "commit": "0123456789abcdef0123456789abcdef01234567"})},
			{set("spec.ref", map[string]any{"tag": "v2.0.0", "semver": ">=1.0.0 <2.0.0"})},
			{set("spec.ref", map[string]any{"tag": "v1.0.0", "branch": "main"})},
			{set("spec.interval", "500ms"), set("spec.timeout", "1h30m")},
			{set("spec.receiver", map[string]any{"secretRef": map[string]any{"name": "hook"}})},
			{set("spec.verify", map[string]any{"secretRef": map[string]any{"name": "keys"}})},
			{set("spec.ref", map[string]any{"commit": "0123456789abcdef0123456789abcdef01234567"}), set("spec.verify", map[string]any{"mode": "HEAD", "secretRef": map[string]any{"name": "keys"}})},
			{set("spec.ref", map[string]any{"tag": "v1.0.0"}), set("spec.verify", map[string]any{"mode": "Tag", "secretRef": map[string]any{"name": "keys"}})},
			{set("spec.ref", map[string]any{"semver": ">=1.0.0"}), set("spec.verify", map[string]any{"mode": "TagAndHEAD", "secretRef": map[string]any{"name": "keys"}})},
		} {
			g := NewWithT(t)
			u := decode(t, validGitSync)
			for _, f := range m {
				f(u.Object)
			}
			u.SetName("valid-" + strconv.Itoa(i))
			u.SetNamespace(ns)
			g.Expect(env.Client.Create(ctx, u, strict)).To(Succeed())
		}
	})
}
