package promotion

import (
	"testing"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/gitsync"
)

func TestCarries(t *testing.T) {
	msg := func(trailers string) string {
		return "promote web 1.1.0 to staging\n\nBundle 3f1c0a9e2b7d4c11:\n  web: r/web:1.1.0@sha256:aa\nFound in the registry.\n\n" + trailers + "\n"
	}
	ours := "Sluice-Pipeline: apps/web\nSluice-Stage: staging\nSluice-Bundle: 3f1c0a9e2b7d4c11\nSluice-Image: web=r/web:1.1.0@sha256:aa"
	for _, tc := range []struct {
		name     string
		msg      string
		rollback bool
		want     bool
	}{
		{"the write", msg(ours), false, true},
		{"another bundle", msg("Sluice-Pipeline: apps/web\nSluice-Stage: staging\nSluice-Bundle: 0000000000000000"), false, false},
		{"another stage", msg("Sluice-Pipeline: apps/web\nSluice-Stage: production\nSluice-Bundle: 3f1c0a9e2b7d4c11"), false, false},
		{"another Pipeline", msg("Sluice-Pipeline: other/web\nSluice-Stage: staging\nSluice-Bundle: 3f1c0a9e2b7d4c11"), false, false},
		{"the rollback", msg(ours + "\nSluice-Rollback: true"), true, true},
		{"a rollback is not the earlier promotion", msg(ours), true, false},
		{"a promotion is not a rollback", msg(ours + "\nSluice-Rollback: true"), false, false},
		{"trailers in the body only", "promote\n\n" + ours + "\n\nsigned off by a person\n", false, false},
		{"no trailers", "fix typo\n", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(carries(tc.msg, "apps/web", "staging", "3f1c0a9e2b7d4c11", tc.rollback)).To(Equal(tc.want))
		})
	}
}

func TestRedactCreds(t *testing.T) {
	g := NewWithT(t)
	tg := gitTarget{creds: &gitsync.Credentials{Password: "s3cret-pw", BearerToken: "tok-123456"}}
	g.Expect(redactCreds("auth s3cret-pw and tok-123456 refused", tg)).To(Equal("auth *** and *** refused"))
	g.Expect(redactCreds("no creds", gitTarget{})).To(Equal("no creds"))
}
