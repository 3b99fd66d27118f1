package v1beta1_test

import (
	"context"
	"strconv"
	"testing"

	. "github.com/onsi/gomega"
)

// TestGitSyncCommitStatus_ValidAccepted checks the spec.commitStatus shapes
// the validation must accept; the invalid ones are in invalidGitSyncCommitStatus.
func TestGitSyncCommitStatus_ValidAccepted(t *testing.T) {
	ns := newNamespace(t)
	for i, cs := range []string{
		`{provider: github, secretRef: {name: github-token}}`,
		`{provider: gitlab, address: "https://gitlab.example.com", repository: platform/team/app, secretRef: {name: t}, contextName: "deploy/prod"}`,
		`{provider: gitea, address: "http://127.0.0.1:3000/", secretRef: {name: t}}`,
		`{provider: bitbucket, repository: acme/app, secretRef: {name: t}}`,
		`{provider: bitbucketserver, address: "https://bitbucket.example.com:7990", secretRef: {name: t}}`,
		`{provider: azuredevops, repository: org/project/repo, secretRef: {name: t.token}}`,
	} {
		g := NewWithT(t)
		u := decode(t, validGitSync)
		set("spec.commitStatus", yamlValue(cs))(u.Object)
		u.SetName("cs-" + strconv.Itoa(i))
		u.SetNamespace(ns)
		g.Expect(env.Client.Create(context.Background(), u, strict)).To(Succeed(), cs)
	}
}
