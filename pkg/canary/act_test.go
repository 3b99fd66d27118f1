package canary

import (
	"testing"

	. "github.com/onsi/gomega"
)

// Given action errors that quote URLs, the status message keeps the
// address and loses what may be a credential: user information and query.
func TestRedactURLs(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", `Post "http://gate.test/approve": dial tcp: refused`, `Post "http://gate.test/approve": dial tcp: refused`},
		{"userinfo", `Get "https://bot:s3cret@git.example.com/repo": 401`, `Get "https://git.example.com/repo": 401`},
		{"query", `Get "https://hooks.example.com/x?token=abc&x=1": timeout`, `Get "https://hooks.example.com/x?redacted": timeout`},
		{"no url", `httproutes.gateway.networking.k8s.io "gw" is forbidden`, `httproutes.gateway.networking.k8s.io "gw" is forbidden`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got := redactURLs(tc.in)
			g.Expect(got).To(Equal(tc.want))
			g.Expect(got).NotTo(ContainSubstring("s3cret"))
			g.Expect(got).NotTo(ContainSubstring("token=abc"))
		})
	}
}
