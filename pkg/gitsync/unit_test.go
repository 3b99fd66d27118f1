package gitsync

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

func TestSelectRef_Precedence(t *testing.T) {
	sha := "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		name string
		ref  *sluicev1beta1.GitRef
		want Ref
	}{
		{"nil is main", nil, Ref{RefBranch, "main"}},
		{"empty is main", &sluicev1beta1.GitRef{}, Ref{RefBranch, "main"}},
		{"branch", &sluicev1beta1.GitRef{Branch: "dev"}, Ref{RefBranch, "dev"}},
		{"tag over branch", &sluicev1beta1.GitRef{Branch: "dev", Tag: "v1"}, Ref{RefTag, "v1"}},
		{"semver over tag", &sluicev1beta1.GitRef{Tag: "v1", SemVer: ">=1"}, Ref{RefSemVer, ">=1"}},
		{"commit over all", &sluicev1beta1.GitRef{Branch: "b", Tag: "t", SemVer: "1.x", Commit: sha}, Ref{RefCommit, sha}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(SelectRef(tt.ref)).To(Equal(tt.want))
		})
	}
}

func TestPickSemVer(t *testing.T) {
	g := NewWithT(t)
	tags := []string{"v1.0.0", "v1.2.0", "1.1.5", "v2.0.0", "v1.3.0-rc.1", "latest", "release-1"}
	got, err := PickSemVer(">=1.0.0 <2.0.0", tags)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(Equal("v1.2.0"))
	got, err = PickSemVer("~1.1", tags)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(Equal("1.1.5"))
	got, err = PickSemVer("*", tags)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(Equal("v2.0.0"))
	_, err = PickSemVer(">=3", tags)
	g.Expect(errors.Is(err, ErrNoMatchingTag)).To(BeTrue())
	_, err = PickSemVer("not a range", tags)
	g.Expect(err).To(MatchError(ContainSubstring("spec.ref.semver")))
}

func TestConfinePath(t *testing.T) {
	g := NewWithT(t)
	root := t.TempDir()
	outside := t.TempDir()
	g.Expect(os.MkdirAll(filepath.Join(root, "deploy", "prod"), 0o755)).To(Succeed())
	g.Expect(os.Symlink(outside, filepath.Join(root, "escape"))).To(Succeed())
	g.Expect(os.Symlink("deploy/prod", filepath.Join(root, "inside"))).To(Succeed())

	for _, ok := range []string{"", ".", "deploy", "./deploy/prod", "inside"} {
		_, err := ConfinePath(root, ok)
		g.Expect(err).NotTo(HaveOccurred(), ok)
	}
	for _, bad := range []string{"..", "deploy/../..", "../x", "/etc", "escape"} {
		_, err := ConfinePath(root, bad)
		g.Expect(errors.Is(err, ErrOutsideCheckout)).To(BeTrue(), "%s: %v", bad, err)
	}
}

func TestDiff_Inventory(t *testing.T) {
	g := NewWithT(t)
	cm := func(name string) sluicev1beta1.GitSyncInventoryEntry {
		return sluicev1beta1.GitSyncInventoryEntry{Version: "v1", Kind: "ConfigMap", Namespace: "a", Name: name}
	}
	dep := sluicev1beta1.GitSyncInventoryEntry{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "a", Name: "web"}
	depV2 := dep
	depV2.Version = "v2"
	g.Expect(Diff([]sluicev1beta1.GitSyncInventoryEntry{cm("x"), cm("y"), dep}, []sluicev1beta1.GitSyncInventoryEntry{cm("x"), depV2})).
		To(Equal([]sluicev1beta1.GitSyncInventoryEntry{cm("y")}))
	g.Expect(Diff(nil, []sluicev1beta1.GitSyncInventoryEntry{cm("x")})).To(BeEmpty())
	g.Expect(Diff([]sluicev1beta1.GitSyncInventoryEntry{cm("x")}, nil)).To(HaveLen(1))
}

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBuild(t *testing.T) {
	g := NewWithT(t)
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"plain/a.yaml":                  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n",
		"plain/sub/c.yml":               "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
		"plain/notes.txt":               "ignored",
		"base/cm.yaml":                  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: base\n",
		"base/kustomization.yaml":       "resources: [cm.yaml]\n",
		"overlay/kustomization.yaml":    "resources: [../base]\nnamePrefix: prod-\n",
		"remote/kustomization.yaml":     "resources: [\"https://github.com/example/repo//deploy?ref=main\"]\n",
		"remotegit/kustomization.yaml":  "resources: [\"github.com/example/repo/deploy\"]\n",
		"broken/x.yaml":                 "kind: [\n",
		"generator/kustomization.yaml":  "generators: [gen.yaml]\n",
		"generator/gen.yaml":            "apiVersion: someteam.example.com/v1\nkind: ChartInflator\nmetadata:\n  name: x\n",
		"escapefile/kustomization.yaml": "resources: [/etc/hostname]\n",
	})

	objs, err := Build(root, "plain")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(Inventory(objs)).To(HaveLen(3))

	objs, err = Build(root, "overlay")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(objs).To(HaveLen(1))
	g.Expect(objs[0].GetName()).To(Equal("prod-base"))

	_, err = Build(root, "remote")
	g.Expect(errors.Is(err, ErrRemoteBase)).To(BeTrue(), "%v", err)
	_, err = Build(root, "remotegit")
	g.Expect(errors.Is(err, ErrRemoteBase)).To(BeTrue(), "%v", err)

	_, err = Build(root, "broken")
	g.Expect(err).To(MatchError(ContainSubstring("x.yaml")))

	_, err = Build(root, "generator")
	g.Expect(err).To(HaveOccurred(), "a plugin generator must not run")

	_, err = Build(root, "escapefile")
	g.Expect(err).To(HaveOccurred(), "a file outside the checkout must not load")

	_, err = Build(root, "../")
	g.Expect(errors.Is(err, ErrOutsideCheckout)).To(BeTrue())
}

func TestBuild_SymlinkEscapeRefused(t *testing.T) {
	g := NewWithT(t)
	root := t.TempDir()
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"secret.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stolen\n"})
	writeFiles(t, root, map[string]string{"deploy/ok.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n"})
	g.Expect(os.Symlink(filepath.Join(outside, "secret.yaml"), filepath.Join(root, "deploy", "abs.yaml"))).To(Succeed())
	_, err := Build(root, "deploy")
	g.Expect(errors.Is(err, ErrOutsideCheckout)).To(BeTrue(), "%v", err)
	g.Expect(err).To(MatchError(ContainSubstring("deploy/abs.yaml")))

	// A link elsewhere in the repository is refused too, and one inside is followed.
	g.Expect(os.Remove(filepath.Join(root, "deploy", "abs.yaml"))).To(Succeed())
	g.Expect(os.Symlink("ok.yaml", filepath.Join(root, "deploy", "alias.yml"))).To(Succeed())
	g.Expect(os.Symlink("../../"+filepath.Base(outside), filepath.Join(root, "deploy", "dir"))).To(Succeed())
	_, err = Build(root, "deploy")
	g.Expect(errors.Is(err, ErrOutsideCheckout)).To(BeTrue(), "%v", err)
	g.Expect(os.Remove(filepath.Join(root, "deploy", "dir"))).To(Succeed())
	_, err = Build(root, "deploy")
	g.Expect(err).To(MatchError(ContainSubstring("may not add resource with an already registered id")))
}

func TestSummarize(t *testing.T) {
	gs := &sluicev1beta1.GitSync{}
	gs.Generation = 3
	tests := []struct {
		name       string
		err        error
		retry      bool
		ready      metav1.ConditionStatus
		reason     string
		stalled    bool
		observed   int64
		reconciles metav1.ConditionStatus
	}{
		{"success", nil, false, metav1.ConditionTrue, ReasonSucceeded, false, 3, metav1.ConditionFalse},
		{"build failure stalls", fail(ReasonBuildFailed, true, errors.New("bad yaml")), false, metav1.ConditionFalse, ReasonBuildFailed, true, 3, metav1.ConditionFalse},
		{"fetch failure retries", fail(ReasonFetchFailed, false, errors.New("refused")), true, metav1.ConditionFalse, ReasonFetchFailed, false, 1, metav1.ConditionTrue},
		{"untyped error is an apply failure", errors.New("boom"), true, metav1.ConditionFalse, ReasonApplyFailed, false, 1, metav1.ConditionTrue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			status := &sluicev1beta1.GitSyncStatus{ObservedGeneration: 1}
			g.Expect(summarize(gs, status, tt.err)).To(Equal(tt.retry))
			ready := apimeta.FindStatusCondition(status.Conditions, sluicev1beta1.ReadyCondition)
			g.Expect(ready.Status).To(Equal(tt.ready))
			g.Expect(ready.Reason).To(Equal(tt.reason))
			g.Expect(ready.ObservedGeneration).To(Equal(int64(3)))
			g.Expect(apimeta.IsStatusConditionTrue(status.Conditions, sluicev1beta1.StalledCondition)).To(Equal(tt.stalled))
			g.Expect(apimeta.FindStatusCondition(status.Conditions, sluicev1beta1.ReconcilingCondition).Status).To(Equal(tt.reconciles))
			g.Expect(status.ObservedGeneration).To(Equal(tt.observed))
			if tt.err != nil {
				g.Expect(status.LastFailureReason).To(Equal(tt.reason))
				g.Expect(status.LastFailureMessage).NotTo(BeEmpty())
			}
		})
	}
}
