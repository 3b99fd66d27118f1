package providers_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/providers"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// The table in docs/routers.md is what the routers declare now: a router
// that gains or loses a capability fails here until `make generate`.
func TestTable_DocsUpToDate(t *testing.T) {
	g := NewWithT(t)
	root, err := testenv.RepoRoot()
	g.Expect(err).NotTo(HaveOccurred())
	doc, err := os.ReadFile(filepath.Join(root, "docs", "routers.md"))
	g.Expect(err).NotTo(HaveOccurred())
	r := router.NewRegistry()
	providers.RegisterAll(r, providers.Options{})
	want, err := providers.Splice(doc, providers.Table(r))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(doc)).To(Equal(string(want)), "docs/routers.md is stale: run make generate (go run ./hack/routerdocs)")
}

func TestTable_EveryRouterIsDescribed(t *testing.T) {
	g := NewWithT(t)
	r := router.NewRegistry()
	providers.RegisterAll(r, providers.Options{})
	for _, p := range r.Providers() {
		g.Expect(p.Objects).NotTo(BeEmpty(), "router %v does not implement router.Describer", p.Names)
	}
	table := providers.Table(r)
	g.Expect(table).To(ContainSubstring("| `nginx` | Ingress `<ingress>-canary`"))
	g.Expect(table).To(ContainSubstring("| `gatewayapi`, `gatewayapi:v1`, `gatewayapi:v1beta1` |"))
	g.Expect(strings.Count(table, "\n")).To(Equal(len(r.Providers()) + 2))
}

func TestSplice(t *testing.T) {
	g := NewWithT(t)
	doc := "# T\n\n" + providers.BeginMarker + "\nold\n" + providers.EndMarker + "\nafter\n"
	out, err := providers.Splice([]byte(doc), "new\n")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(out)).To(Equal("# T\n\n" + providers.BeginMarker + "\nnew\n" + providers.EndMarker + "\nafter\n"))
	_, err = providers.Splice([]byte("# no markers\n"), "new\n")
	g.Expect(err).To(MatchError(providers.ErrNoMarkers))
}
