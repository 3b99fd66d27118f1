package gitwrite_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-cd/sluice/pkg/gitwrite"
)

// FuzzChanges applies both changes to arbitrary files: they never panic,
// and a change that succeeded is idempotent (applied again, it leaves the
// file byte for byte as it was), which is what makes a retried write commit
// nothing.
func FuzzChanges(f *testing.F) {
	for _, seed := range []string{kustomization, deployment, values, "", "---\n", "images: 3\n", "a: [1, 2] # {\"$promotion\": \"podinfo\"}\n",
		"- x # {\"$promotion\": \"podinfo:tag\"}\n", "k: &a v # {\"$promotion\": \"podinfo\"}\nj: *a\n", "images:\n- name: podinfo\n  newTag:\n    nested: 1\n"} {
		f.Add(seed)
	}
	img := gitwrite.Image{Name: "ghcr.io/stefanprodan/podinfo", Tag: "6.1.0", Digest: digest}
	changes := []gitwrite.Change{
		gitwrite.KustomizeImage{Name: img.Name, NewTag: img.Tag, Digest: img.Digest},
		gitwrite.Setter{Name: "podinfo", Image: img},
	}
	f.Fuzz(func(t *testing.T, data string) {
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				panic(fmt.Sprintf("stuck on %q", data))
			}
		}()
		dir := t.TempDir()
		file := filepath.Join(dir, "kustomization.yaml")
		if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, c := range changes {
			if err := c.Apply(dir); err != nil {
				continue
			}
			once, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Apply(dir); err != nil {
				t.Fatalf("%s applied once, then failed: %v\n%s", c, err, once)
			}
			twice, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if string(once) != string(twice) {
				t.Fatalf("%s is not idempotent:\n%s\n---- then ----\n%s", c, once, twice)
			}
		}
	})
}
