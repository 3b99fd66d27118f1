package gitsync_test

import (
	"bytes"
	"testing"

	"github.com/fluxcd/pkg/ssa/utils"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
)

// builtObjects are what a kustomize build of an overlay could give: two
// Deployments (one labelled for the frontend), a CronJob, a StatefulSet, a
// Pod, a ConfigMap, and an annotated Service.
const builtObjects = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: prod
  labels: {tier: frontend}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      initContainers:
        - {name: migrate, image: ghcr.io/example/web:1.0.0}
      containers:
        - {name: app, image: ghcr.io/example/web:1.0.0}
        - {name: proxy, image: "envoyproxy/envoy:v1.30@sha256:1111111111111111111111111111111111111111111111111111111111111111"}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
  namespace: prod
  labels: {tier: backend}
spec:
  replicas: 1
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec:
      containers:
        - {name: app, image: ghcr.io/example/worker:1.0.0}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: prod}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          initContainers:
            - {name: wait, image: busybox}
          containers:
            - {name: report, image: ghcr.io/example/web:1.0.0}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: cache, namespace: prod}
spec:
  serviceName: cache
  selector: {matchLabels: {app: cache}}
  template:
    metadata: {labels: {app: cache}}
    spec:
      containers:
        - {name: redis, image: "redis:7"}
---
apiVersion: v1
kind: Pod
metadata: {name: debug, namespace: prod}
spec:
  containers:
    - {name: shell, image: busybox:1.36}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: prod}
data: {level: info}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: prod
  annotations: {sluice.dev/exposed: "true"}
spec:
  ports: [{port: 80}]
`

func built(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	objs, err := utils.ReadObjects(bytes.NewReader([]byte(builtObjects)))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// find returns the object of that kind and name, failing the test when absent.
func find(g Gomega, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	g.Expect(kind+"/"+name).To(BeEmpty(), "object not found")
	return nil
}

// field reads a nested field, with list items by index, e.g.
// field(o, "spec", "template", "spec", "containers", 0, "image").
func field(o *unstructured.Unstructured, path ...any) any {
	var cur any = o.Object
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				return nil
			}
			cur = m[k]
		case int:
			l, ok := cur.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			cur = l[k]
		}
	}
	return cur
}

func podSpec(kind string) []any {
	if kind == "CronJob" {
		return []any{"spec", "jobTemplate", "spec", "template", "spec"}
	}
	if kind == "Pod" {
		return []any{"spec"}
	}
	return []any{"spec", "template", "spec"}
}

func image(o *unstructured.Unstructured, list string, i int) any {
	return field(o, append(podSpec(o.GetKind()), list, i, "image")...)
}

func TestCustomize_NothingToDo(t *testing.T) {
	g := NewWithT(t)
	objs := built(t)
	out, err := gitsync.Customize(objs, nil, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(Equal(objs))
}

func TestCustomize_StrategicMergeByName(t *testing.T) {
	g := NewWithT(t)
	out, err := gitsync.Customize(built(t), []sluicev1beta1.GitSyncPatch{{Patch: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: prod}
spec:
  replicas: 5
  template:
    spec:
      containers:
        - name: app
          env: [{name: MODE, value: production}]
`}}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(HaveLen(7))
	web := find(g, out, "Deployment", "web")
	g.Expect(field(web, "spec", "replicas")).To(BeEquivalentTo(5))
	// Strategic merge: the container list is merged by name, not replaced.
	g.Expect(field(web, "spec", "template", "spec", "containers")).To(HaveLen(2))
	g.Expect(field(web, "spec", "template", "spec", "containers", 0, "env", 0, "value")).To(Equal("production"))
	g.Expect(image(web, "containers", 0)).To(Equal("ghcr.io/example/web:1.0.0"))
	g.Expect(field(find(g, out, "Deployment", "worker"), "spec", "replicas")).To(BeEquivalentTo(1))
}

// TestCustomize_StrategicMergeWithoutNamespace: the overlay put the objects
// in "prod"; a patch that names no namespace still finds them, and each
// document of a multi-document patch is applied, a deletion too.
func TestCustomize_StrategicMergeWithoutNamespace(t *testing.T) {
	g := NewWithT(t)
	out, err := gitsync.Customize(built(t), []sluicev1beta1.GitSyncPatch{{Patch: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec: {replicas: 5}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {level: warn}
---
apiVersion: v1
kind: Pod
metadata: {name: debug}
$patch: delete
`}}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(field(find(g, out, "Deployment", "web"), "spec", "replicas")).To(BeEquivalentTo(5))
	g.Expect(find(g, out, "Deployment", "web").GetNamespace()).To(Equal("prod"))
	g.Expect(field(find(g, out, "ConfigMap", "settings"), "data", "level")).To(Equal("warn"))
	g.Expect(field(find(g, out, "Deployment", "worker"), "spec", "replicas")).To(BeEquivalentTo(1))
	g.Expect(out).To(HaveLen(6), "the Pod is deleted")
	for _, o := range out {
		g.Expect(o.GetKind()).NotTo(Equal("Pod"))
	}
}

func TestCustomize_JSON6902ByKindAndLabelSelector(t *testing.T) {
	g := NewWithT(t)
	out, err := gitsync.Customize(built(t), []sluicev1beta1.GitSyncPatch{{
		Patch:  `[{"op": "replace", "path": "/spec/replicas", "value": 3}]`,
		Target: &sluicev1beta1.GitSyncPatchTarget{Group: "apps", Kind: "Deployment", LabelSelector: "tier in (frontend)"},
	}}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(field(find(g, out, "Deployment", "web"), "spec", "replicas")).To(BeEquivalentTo(3))
	g.Expect(field(find(g, out, "Deployment", "worker"), "spec", "replicas")).To(BeEquivalentTo(1))
}

func TestCustomize_AnnotationSelectorAndYAMLOperations(t *testing.T) {
	g := NewWithT(t)
	out, err := gitsync.Customize(built(t), []sluicev1beta1.GitSyncPatch{{
		Patch: `
- op: add
  path: /metadata/labels
  value: {exposed: "yes"}
`,
		Target: &sluicev1beta1.GitSyncPatchTarget{AnnotationSelector: "sluice.dev/exposed=true"},
	}}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(find(g, out, "Service", "web").GetLabels()).To(HaveKeyWithValue("exposed", "yes"))
	g.Expect(find(g, out, "Deployment", "web").GetLabels()).NotTo(HaveKey("exposed"))
}

func TestCustomize_PatchesInOrder(t *testing.T) {
	g := NewWithT(t)
	deployments := &sluicev1beta1.GitSyncPatchTarget{Kind: "Deployment", Name: "web|worker"}
	out, err := gitsync.Customize(built(t), []sluicev1beta1.GitSyncPatch{
		{Patch: `[{"op": "replace", "path": "/spec/replicas", "value": 2}]`, Target: deployments},
		// The second sees what the first did: a test fails unless it runs after it.
		{Patch: `[{"op": "test", "path": "/spec/replicas", "value": 2}, {"op": "replace", "path": "/spec/replicas", "value": 4}]`, Target: deployments},
		// A strategic merge patch with a target: it patches every object selected, whatever its name says.
		{Patch: "kind: Deployment\nmetadata: {name: any}\nspec: {minReadySeconds: 10}\n", Target: &sluicev1beta1.GitSyncPatchTarget{Kind: "Deployment", LabelSelector: "tier=backend"}},
	}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	for _, name := range []string{"web", "worker"} {
		g.Expect(field(find(g, out, "Deployment", name), "spec", "replicas")).To(BeEquivalentTo(4), name)
	}
	g.Expect(field(find(g, out, "Deployment", "worker"), "spec", "minReadySeconds")).To(BeEquivalentTo(10))
	g.Expect(field(find(g, out, "Deployment", "web"), "spec", "minReadySeconds")).To(BeNil())
}

func TestCustomize_TargetSelectingNothingIsNoOp(t *testing.T) {
	g := NewWithT(t)
	out, err := gitsync.Customize(built(t), []sluicev1beta1.GitSyncPatch{{
		Patch:  `[{"op": "replace", "path": "/spec/replicas", "value": 9}]`,
		Target: &sluicev1beta1.GitSyncPatchTarget{Kind: "Deployment", LabelSelector: "tier=nothing"},
	}}, nil)
	g.Expect(err).NotTo(HaveOccurred(), "as in Flux and kustomize, a target that selects nothing patches nothing")
	g.Expect(out).To(HaveLen(7))
}

func TestCustomize_Images(t *testing.T) {
	g := NewWithT(t)
	const digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	out, err := gitsync.Customize(built(t), nil, []sluicev1beta1.GitSyncImage{
		{Name: "ghcr.io/example/web", NewTag: "1.4.2"},
		{Name: "envoyproxy/envoy", NewName: "mirror.example.com/envoy"},
		{Name: "busybox", Digest: digest},
		{Name: "redis", NewName: "mirror.example.com/redis", NewTag: "7.2"},
		{Name: "ghcr.io/example/absent", NewTag: "9"},
	})
	g.Expect(err).NotTo(HaveOccurred())
	web := find(g, out, "Deployment", "web")
	g.Expect(image(web, "initContainers", 0)).To(Equal("ghcr.io/example/web:1.4.2"))
	g.Expect(image(web, "containers", 0)).To(Equal("ghcr.io/example/web:1.4.2"))
	// newName alone keeps the tag and the digest.
	g.Expect(image(web, "containers", 1)).To(Equal("mirror.example.com/envoy:v1.30@sha256:1111111111111111111111111111111111111111111111111111111111111111"))
	report := find(g, out, "CronJob", "report")
	g.Expect(image(report, "containers", 0)).To(Equal("ghcr.io/example/web:1.4.2"))
	g.Expect(image(report, "initContainers", 0)).To(Equal("busybox@" + digest))
	// A digest replaces the tag.
	g.Expect(image(find(g, out, "Pod", "debug"), "containers", 0)).To(Equal("busybox@" + digest))
	g.Expect(image(find(g, out, "StatefulSet", "cache"), "containers", 0)).To(Equal("mirror.example.com/redis:7.2"))
	// Only the image named: ghcr.io/example/worker is not ghcr.io/example/web.
	g.Expect(image(find(g, out, "Deployment", "worker"), "containers", 0)).To(Equal("ghcr.io/example/worker:1.0.0"))
}

func TestCustomize_TagAndDigest(t *testing.T) {
	g := NewWithT(t)
	const digest = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
	out, err := gitsync.Customize(built(t), nil, []sluicev1beta1.GitSyncImage{{Name: "ghcr.io/example/worker", NewTag: "2.0.0", Digest: digest}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(image(find(g, out, "Deployment", "worker"), "containers", 0)).To(Equal("ghcr.io/example/worker:2.0.0@" + digest))
}

func TestCustomize_PatchesBeforeImages(t *testing.T) {
	g := NewWithT(t)
	// The patch adds a container; the image override reaches it.
	out, err := gitsync.Customize(built(t), []sluicev1beta1.GitSyncPatch{{
		Patch:  `[{"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "sidecar", "image": "ghcr.io/example/web:0.1"}}]`,
		Target: &sluicev1beta1.GitSyncPatchTarget{Kind: "Deployment", Name: "worker"},
	}}, []sluicev1beta1.GitSyncImage{{Name: "ghcr.io/example/web", NewTag: "1.4.2"}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(image(find(g, out, "Deployment", "worker"), "containers", 1)).To(Equal("ghcr.io/example/web:1.4.2"))
}

func TestCustomize_Errors(t *testing.T) {
	replicas := `[{"op": "replace", "path": "/spec/replicas", "value": 2}]`
	web := &sluicev1beta1.GitSyncPatchTarget{Kind: "Deployment", Name: "web"}
	tests := []struct {
		name    string
		patches []sluicev1beta1.GitSyncPatch
		wantErr []string
	}{
		{
			name:    "malformed patch",
			patches: []sluicev1beta1.GitSyncPatch{{Patch: replicas, Target: web}, {Patch: "spec: {replicas: [", Target: web}},
			wantErr: []string{"spec.patches[1]"},
		},
		{
			name:    "JSON 6902 patch without a target",
			patches: []sluicev1beta1.GitSyncPatch{{Patch: replicas}},
			wantErr: []string{"spec.patches[0]", "must specify a target"},
		},
		{
			name:    "JSON 6902 operation on a missing path",
			patches: []sluicev1beta1.GitSyncPatch{{Patch: replicas, Target: web}, {Patch: `[{"op": "replace", "path": "/spec/absent/field", "value": 1}]`, Target: web}},
			wantErr: []string{"spec.patches[1]"},
		},
		{
			name:    "JSON 6902 test that fails",
			patches: []sluicev1beta1.GitSyncPatch{{Patch: `[{"op": "test", "path": "/spec/replicas", "value": 7}]`, Target: web}},
			wantErr: []string{"spec.patches[0]"},
		},
		{
			name:    "strategic merge patch naming an object that is not built",
			patches: []sluicev1beta1.GitSyncPatch{{Patch: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: absent}\nspec: {replicas: 2}\n"}},
			wantErr: []string{"spec.patches[0]", "names Deployment absent, which the build of spec.path does not hold"},
		},
		{
			name:    "strategic merge patch naming another namespace",
			patches: []sluicev1beta1.GitSyncPatch{{Patch: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: staging}\nspec: {replicas: 2}\n"}},
			wantErr: []string{"spec.patches[0]", "Deployment web in namespace staging"},
		},
		{
			name:    "strategic merge patch naming another group",
			patches: []sluicev1beta1.GitSyncPatch{{Patch: "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 2}\n"}},
			wantErr: []string{"spec.patches[0]", "Deployment web"},
		},
		{
			name: "second document of a strategic merge patch naming an object that is not built",
			patches: []sluicev1beta1.GitSyncPatch{
				{Patch: replicas, Target: web},
				{Patch: "kind: ConfigMap\nmetadata: {name: settings}\n---\nkind: ConfigMap\nmetadata: {name: absent}\n"},
			},
			wantErr: []string{"spec.patches[1]", "ConfigMap absent"},
		},
		{
			name: "the failing kustomize patch is mapped back to its entry",
			patches: []sluicev1beta1.GitSyncPatch{
				{Patch: "kind: ConfigMap\nmetadata: {name: settings}\n---\nkind: Service\nmetadata: {name: web}\n"},
				{Patch: `[{"op": "remove", "path": "/spec/absent"}]`, Target: web},
			},
			wantErr: []string{"spec.patches[1]"},
		},
		{
			name:    "label selector that does not parse",
			patches: []sluicev1beta1.GitSyncPatch{{Patch: replicas, Target: &sluicev1beta1.GitSyncPatchTarget{LabelSelector: "tier in frontend"}}},
			wantErr: []string{"spec.patches[0]", "target.labelSelector"},
		},
		{
			name:    "annotation selector that does not parse",
			patches: []sluicev1beta1.GitSyncPatch{{Patch: replicas, Target: &sluicev1beta1.GitSyncPatchTarget{AnnotationSelector: "=x"}}},
			wantErr: []string{"spec.patches[0]", "target.annotationSelector"},
		},
		{
			name:    "name that is not a regular expression",
			patches: []sluicev1beta1.GitSyncPatch{{Patch: replicas, Target: &sluicev1beta1.GitSyncPatchTarget{Name: "web("}}},
			wantErr: []string{"spec.patches[0]", "target.name"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			out, err := gitsync.Customize(built(t), tt.patches, nil)
			g.Expect(out).To(BeNil())
			g.Expect(err).To(HaveOccurred())
			for _, want := range tt.wantErr {
				g.Expect(err.Error()).To(ContainSubstring(want))
			}
		})
	}
}

func TestCustomize_NoObjects(t *testing.T) {
	g := NewWithT(t)
	out, err := gitsync.Customize(nil, nil, []sluicev1beta1.GitSyncImage{{Name: "busybox", NewTag: "1"}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(BeEmpty())
}
