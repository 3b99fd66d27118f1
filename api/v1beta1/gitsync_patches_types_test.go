package v1beta1_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

// TestGitSync_PatchesAndImagesAccepted holds the shapes of spec.patches and
// spec.images close to the rules of invalidGitSyncPatches that the API
// server must still accept.
func TestGitSync_PatchesAndImagesAccepted(t *testing.T) {
	ns := newNamespace(t)
	for i, m := range [][]mutation{
		// A strategic merge patch naming its object needs no target.
		{set("spec.patches", []any{map[string]any{"patch": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 3}\n"}})},
		// The same with a target, and a JSON 6902 patch in YAML and in JSON with one.
		{set("spec.patches", yamlValue(`
- patch: "kind: Deployment\nmetadata: {name: any}\nspec: {replicas: 3}"
  target: {kind: Deployment, labelSelector: "app.kubernetes.io/part-of=shop"}
- patch: "- op: replace\n  path: /spec/replicas\n  value: 2\n"
  target: {group: apps, version: v1, kind: Deployment, name: "web-.*", namespace: prod}
- patch: '[{"op": "add", "path": "/metadata/labels/x", "value": "y"}]'
  target: {annotationSelector: "sluice.dev/exposed=true,!skip"}
`))},
		// Every selector form.
		{set("spec.patches", yamlValue(`
- patch: "x: y"
  target: {labelSelector: "a, !b, c=d, e==f, g!=h, i in (j, k), l notin (m), example.com/n=o, p="}
`))},
		{set("spec.images", yamlValue(`
- {name: ghcr.io/org/web, newTag: 1.4.2}
- {name: "localhost:5000/org/web", newName: registry.example.com/web}
- {name: busybox, digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
- {name: redis, newName: mirror.example.com/redis, newTag: "7.2_alpine-1", digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
`))},
		{set("spec.images", []any{map[string]any{"name": "web", "newTag": strings.Repeat("t", 128)}})},
	} {
		g := NewWithT(t)
		u := decode(t, validGitSync)
		for _, f := range m {
			f(u.Object)
		}
		u.SetName("valid-patches-" + strconv.Itoa(i))
		u.SetNamespace(ns)
		g.Expect(env.Client.Create(context.Background(), u, strict)).To(Succeed(), "variant %d", i)
	}
}
