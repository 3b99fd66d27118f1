package charttest

import (
	"testing"

	. "github.com/onsi/gomega"
)

// TestSluiceChart_IngressAnnotationsPrefix: the chart passes the nginx
// annotation prefix to the manager (ingress-nginx's default unless set) and
// its schema refuses a value that cannot start an annotation key.
func TestSluiceChart_IngressAnnotationsPrefix(t *testing.T) {
	g := NewWithT(t)
	objs, err := render("sluice", "sluice-system", chartCase{chart: "sluice"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(containerArgs(g, find(objs, "Deployment")[0])).To(ContainElement("--ingress-annotations-prefix=nginx.ingress.kubernetes.io"))
	objs, err = render("sluice", "sluice-system", chartCase{chart: "sluice"}, "--set", "routers.nginx.annotationsPrefix=custom.nginx.example.com")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(containerArgs(g, find(objs, "Deployment")[0])).To(ContainElement("--ingress-annotations-prefix=custom.nginx.example.com"))
	_, err = render("sluice", "sluice-system", chartCase{chart: "sluice"}, "--set", "routers.nginx.annotationsPrefix=Nginx/Ingress")
	g.Expect(err).To(MatchError(ContainSubstring("/routers/nginx/annotationsPrefix")))
}
