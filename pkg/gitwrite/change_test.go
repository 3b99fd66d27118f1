package gitwrite_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/gitwrite"
)

// checkout writes files (path → content) into a new directory.
func checkout(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func read(t *testing.T, dir, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const kustomization = `# Production overlay: promoted by Sluice.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base # the shared base
images:
  # the sidecar is pinned by hand
  - name: nginx
    newTag: "1.27"
  - name: ghcr.io/stefanprodan/podinfo
    newTag: 6.0.0 # set by promotion
    digest: sha256:0000000000000000000000000000000000000000000000000000000000000000
patches:
  - path: replicas.yaml
`

const digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

func TestKustomizeImage_SetsEntryKeepingTheRest(t *testing.T) {
	g := NewWithT(t)
	dir := checkout(t, map[string]string{"overlays/production/kustomization.yaml": kustomization})
	c := gitwrite.KustomizeImage{Dir: "overlays/production", Name: "ghcr.io/stefanprodan/podinfo", NewTag: "6.1.0", Digest: digest}
	g.Expect(c.Apply(dir)).To(Succeed())
	g.Expect(read(t, dir, "overlays/production/kustomization.yaml")).To(Equal(`# Production overlay: promoted by Sluice.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base # the shared base
images:
  # the sidecar is pinned by hand
  - name: nginx
    newTag: "1.27"
  - name: ghcr.io/stefanprodan/podinfo
    newTag: 6.1.0 # set by promotion
    digest: sha256:1111111111111111111111111111111111111111111111111111111111111111
patches:
  - path: replicas.yaml
`))

	// A second apply changes nothing, byte for byte.
	g.Expect(c.Apply(dir)).To(Succeed())
	g.Expect(read(t, dir, "overlays/production/kustomization.yaml")).To(ContainSubstring("newTag: 6.1.0 # set by promotion"))
}

func TestKustomizeImage_AddsEntryAndList(t *testing.T) {
	g := NewWithT(t)
	dir := checkout(t, map[string]string{
		"a/kustomization.yml": "resources:\n- deploy.yaml # compact lists stay compact\nimages:\n- name: nginx\n  newTag: \"1.27\"\n",
		"b/Kustomization":     "# no images yet\nresources:\n  - deploy.yaml\n",
	})
	g.Expect(gitwrite.KustomizeImage{Dir: "a", Name: "podinfo", NewName: "registry.local/podinfo", NewTag: "1.10"}.Apply(dir)).To(Succeed())
	g.Expect(read(t, dir, "a/kustomization.yml")).To(Equal("resources:\n- deploy.yaml # compact lists stay compact\nimages:\n- name: nginx\n  newTag: \"1.27\"\n- name: podinfo\n  newName: registry.local/podinfo\n  newTag: \"1.10\"\n"))

	g.Expect(gitwrite.KustomizeImage{Dir: "b", Name: "podinfo", Digest: digest}.Apply(dir)).To(Succeed())
	g.Expect(read(t, dir, "b/Kustomization")).To(Equal("# no images yet\nresources:\n  - deploy.yaml\nimages:\n  - name: podinfo\n    digest: " + digest + "\n"))

	// A tag replaces a digest that is no longer asked for: the entry says
	// exactly what was promoted.
	g.Expect(gitwrite.KustomizeImage{Dir: "b", Name: "podinfo", NewTag: "2.0.0"}.Apply(dir)).To(Succeed())
	g.Expect(read(t, dir, "b/Kustomization")).To(Equal("# no images yet\nresources:\n  - deploy.yaml\nimages:\n  - name: podinfo\n    newTag: 2.0.0\n"))
}

func TestKustomizeImage_NotFound(t *testing.T) {
	g := NewWithT(t)
	dir := checkout(t, map[string]string{"overlays/staging/deploy.yaml": "kind: Deployment\n"})
	for _, c := range []gitwrite.KustomizeImage{
		{Dir: "overlays/staging", Name: "podinfo", NewTag: "1.0.0"},
		{Dir: "overlays/missing", Name: "podinfo", NewTag: "1.0.0"},
	} {
		err := c.Apply(dir)
		g.Expect(err).To(MatchError(gitwrite.ErrSetterNotFound))
		var nf *gitwrite.NotFoundError
		g.Expect(errors.As(err, &nf)).To(BeTrue())
		g.Expect(nf.Path).To(Equal(c.Dir))
		g.Expect(err.Error()).To(ContainSubstring("kustomization.yaml"))
	}
	err := gitwrite.KustomizeImage{Dir: "../outside", Name: "podinfo", NewTag: "1.0.0"}.Apply(dir)
	g.Expect(err).To(MatchError(gitsync.ErrOutsideCheckout))
}

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
spec:
  template:
    spec:
      containers:
        - name: podinfo
          # the application
          image: ghcr.io/stefanprodan/podinfo:6.0.0 # {"$promotion": "podinfo"}
          ports:
            - containerPort: 9898
        - name: other
          image: ghcr.io/other/app:1.0.0 # {"$promotion": "other"}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: version
data:
  version: 6.0.0 # {"$promotion":"podinfo:tag"}
`

const values = `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
spec:
  values:
    image:
      repository: ghcr.io/stefanprodan/podinfo # {"$promotion": "podinfo:name"}
      tag: 6.0.0 # {"$promotion": "podinfo:tag"}
      digest: "" # {"$promotion": "podinfo:digest"}
    replicaCount: 2
`

func TestSetter_DeploymentAndHelmValues(t *testing.T) {
	g := NewWithT(t)
	dir := checkout(t, map[string]string{
		"apps/podinfo/deploy.yaml":      deployment,
		"apps/podinfo/release.yml":      values,
		"apps/podinfo/untouched.yaml":   "a:   1   # odd spacing stays\n",
		"apps/podinfo/notes.txt":        `image: x # {"$promotion": "podinfo"}`,
		"apps/elsewhere/not-under.yaml": "image: x # {\"$promotion\": \"podinfo\"}\n",
	})
	s := gitwrite.Setter{Path: "apps/podinfo", Name: "podinfo", Image: gitwrite.Image{Name: "ghcr.io/stefanprodan/podinfo", Tag: "6.1.0", Digest: digest}}
	g.Expect(s.Apply(dir)).To(Succeed())
	g.Expect(read(t, dir, "apps/podinfo/deploy.yaml")).To(Equal(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
spec:
  template:
    spec:
      containers:
        - name: podinfo
          # the application
          image: ghcr.io/stefanprodan/podinfo:6.1.0@` + digest + ` # {"$promotion": "podinfo"}
          ports:
            - containerPort: 9898
        - name: other
          image: ghcr.io/other/app:1.0.0 # {"$promotion": "other"}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: version
data:
  version: 6.1.0 # {"$promotion":"podinfo:tag"}
`))
	g.Expect(read(t, dir, "apps/podinfo/release.yml")).To(Equal(`apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
spec:
  values:
    image:
      repository: ghcr.io/stefanprodan/podinfo # {"$promotion": "podinfo:name"}
      tag: 6.1.0 # {"$promotion": "podinfo:tag"}
      digest: "` + digest + `" # {"$promotion": "podinfo:digest"}
    replicaCount: 2
`))
	g.Expect(read(t, dir, "apps/podinfo/untouched.yaml")).To(Equal("a:   1   # odd spacing stays\n"))
	g.Expect(read(t, dir, "apps/podinfo/notes.txt")).To(Equal(`image: x # {"$promotion": "podinfo"}`))
	g.Expect(read(t, dir, "apps/elsewhere/not-under.yaml")).To(ContainSubstring("image: x #"))

	// One file as the path; a tag that reads as a number stays a string.
	s = gitwrite.Setter{Path: "apps/podinfo/release.yml", Name: "podinfo", Image: gitwrite.Image{Name: "ghcr.io/stefanprodan/podinfo", Tag: "6.10"}}
	g.Expect(s.Apply(dir)).To(MatchError(ContainSubstring("marks a field for the digest")))
	s.Image.Digest = digest
	g.Expect(s.Apply(dir)).To(Succeed())
	g.Expect(read(t, dir, "apps/podinfo/release.yml")).To(ContainSubstring(`tag: "6.10" # {"$promotion": "podinfo:tag"}`))
}

func TestSetter_NotFound(t *testing.T) {
	g := NewWithT(t)
	dir := checkout(t, map[string]string{
		"apps/deploy.yaml": "image: x:1 # {\"$promotion\": \"other\"}\nplain: podinfo # a comment, not a marker\n",
	})
	img := gitwrite.Image{Name: "x", Tag: "2"}
	for _, path := range []string{"apps", "apps/deploy.yaml", "apps/missing", ""} {
		err := gitwrite.Setter{Path: path, Name: "podinfo", Image: img}.Apply(dir)
		g.Expect(gitwrite.IsSetterNotFound(err)).To(BeTrue(), "path %q: %v", path, err)
		g.Expect(err.Error()).To(ContainSubstring(`{"$promotion": "podinfo"}`))
	}
	g.Expect(gitwrite.Setter{Path: "../", Name: "podinfo", Image: img}.Apply(dir)).To(MatchError(gitsync.ErrOutsideCheckout))
	// Symlinks out of the checkout are not followed.
	outside := checkout(t, map[string]string{"x.yaml": "image: x:1 # {\"$promotion\": \"podinfo\"}\n"})
	g.Expect(os.Symlink(filepath.Join(outside, "x.yaml"), filepath.Join(dir, "apps", "link.yaml"))).To(Succeed())
	g.Expect(gitwrite.IsSetterNotFound(gitwrite.Setter{Path: "apps", Name: "podinfo", Image: img}.Apply(dir))).To(BeTrue())
	g.Expect(read(t, outside, "x.yaml")).To(ContainSubstring("x:1"))
}

func TestMessage_Trailers(t *testing.T) {
	g := NewWithT(t)
	m := gitwrite.Message{Subject: "Promote podinfo 6.1.0 to production", Body: "Verified in staging.", Trailers: []gitwrite.Trailer{
		{Key: "Sluice-Bundle", Value: "podinfo@" + digest}, {Key: "Sluice-Source-Stage", Value: "staging"},
	}}
	g.Expect(m.String()).To(Equal("Promote podinfo 6.1.0 to production\n\nVerified in staging.\n\nSluice-Bundle: podinfo@" + digest + "\nSluice-Source-Stage: staging\n"))
}
