package gitsync

import (
	"errors"
	"testing"

	. "github.com/onsi/gomega"
)

// A dotenv line without "=" makes kustomize read the value from the
// environment of the process that builds: the controller's. A commit must
// not be able to copy the controller's environment into a Secret or a
// ConfigMap that its author can read.
func TestBuild_EnvFileLineWithoutValueRefused(t *testing.T) {
	t.Setenv("SLUICE_TEST_CONTROLLER_SECRET", "s3cr3t-from-the-controller")
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"secret/kustomization.yaml": "secretGenerator:\n- name: s\n  envs: [app.env]\n",
		"secret/app.env":            "# a comment\n\nA=1\nSLUICE_TEST_CONTROLLER_SECRET\n",
		"config/kustomization.yaml": "configMapGenerator:\n- name: c\n  env: app.env\n",
		"config/app.env":            "B=2\n  SLUICE_TEST_CONTROLLER_SECRET  \n",
		"fine/kustomization.yaml":   "secretGenerator:\n- name: s\n  envs: [app.env]\nconfigMapGenerator:\n- name: c\n  files: [notes.txt]\n",
		"fine/app.env":              "\ufeff# comment\nA=1\nEMPTY=\n\n",
		"fine/notes.txt":            "a line without an equals sign is fine in a files: entry\n",
	})
	for _, path := range []string{"secret", "config"} {
		t.Run(path, func(t *testing.T) {
			g := NewWithT(t)
			objs, err := Build(root, path)
			g.Expect(err).To(HaveOccurred(), "built %v", objs)
			g.Expect(errors.Is(err, ErrEnvFromController)).To(BeTrue(), "%v", err)
			g.Expect(err.Error()).To(ContainSubstring(path + "/app.env"))
			g.Expect(err.Error()).To(ContainSubstring("SLUICE_TEST_CONTROLLER_SECRET"))
			g.Expect(err.Error()).NotTo(ContainSubstring("s3cr3t"))
		})
	}
	g := NewWithT(t)
	objs, err := Build(root, "fine")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(objs).To(HaveLen(2))
}
