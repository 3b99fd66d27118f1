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

func TestGitSync_InvalidManifestsRejected(t *testing.T) {
	tests := []struct {
		name    string
		mutate  []mutation
		field   string
		message string
	}{
		{name: "url missing", mutate: []mutation{del("spec.url")}, field: "spec.url", message: "Required value"},
		{name: "url git scheme", mutate: []mutation{set("spec.url", "git://git.example.com/repo")}, field: "spec.url", message: "must be an https:// or ssh:// URL"},
		{name: "url http not loopback", mutate: []mutation{set("spec.url", "http://git.example.com/repo")}, field: "spec.url", message: "http:// only on loopback"},
		{name: "url scp-like", mutate: []mutation{set("spec.url", "git@github.com:org/repo.git")}, field: "spec.url", message: "must be an https:// or ssh:// URL"},
		{name: "commit short", mutate: []mutation{set("spec.ref.commit", "abc123")}, field: "spec.ref.commit", message: "should match"},
		{name: "commit uppercase", mutate: []mutation{set("spec.ref.commit", "ABCDEF0123456789ABCDEF0123456789ABCDEF01")}, field: "spec.ref.commit", message: "should match"},
		{name: "semver garbage", mutate: []mutation{set("spec.ref.semver", "latest")}, field: "spec.ref.semver", message: "must be a semver constraint"},
		{name: "path with ..", mutate: []mutation{set("spec.path", "deploy/../../etc")}, field: "spec.path", message: "may not contain a '..' element"},
		{name: "path is ..", mutate: []mutation{set("spec.path", "..")}, field: "spec.path", message: "may not contain a '..' element"},
		{name: "interval not a duration", mutate: []mutation{set("spec.interval", "one minute")}, field: "spec.interval", message: "should match"},
		{name: "timeout not a duration", mutate: []mutation{set("spec.timeout", "30")}, field: "spec.timeout", message: "should match"},
		{name: "targetNamespace not a DNS label", mutate: []mutation{set("spec.targetNamespace", "Prod_1")}, field: "spec.targetNamespace", message: "should match"},
		{name: "unknown field", mutate: []mutation{set("spec.branch", "main")}, field: `unknown field "spec.branch"`, message: "strict decoding error"},
	}
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
	t.Run("loopback http, ssh, semver and dotted names are valid", func(t *testing.T) {
		for i, m := range [][]mutation{
			{set("spec.url", "http://127.0.0.1:8080/repo.git")},
			{set("spec.url", "ssh://git@github.com/org/repo.git")},
			{set("spec.ref", map[string]any{"semver": ">=1.2.0 <2.0.0"})},
			{set("spec.ref", map[string]any{"semver": "~1.2"})},
			{set("spec.ref", map[string]any{"commit": "0123456789abcdef0123456789abcdef01234567"})},
			{set("spec.path", "./deploy/..prod/x..y")},
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
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			u := decode(t, validGitSync)
			for _, m := range tt.mutate {
				m(u.Object)
			}
			u.SetName("invalid-" + strconv.Itoa(i))
			u.SetNamespace(ns)
			err := env.Client.Create(ctx, u, strict)
			g.Expect(err).To(HaveOccurred(), "the API server accepted an invalid manifest")
			t.Log(err)
			g.Expect(err.Error()).To(ContainSubstring(tt.field))
			g.Expect(err.Error()).To(ContainSubstring(tt.message))
		})
	}
}
