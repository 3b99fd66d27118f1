package charttest

import (
	"testing"

	. "github.com/onsi/gomega"
)

// TestSluiceChart_GatewayAPIImplementation: the chart passes the Gateway API
// implementation of the builtin metrics to the manager (traefik unless set)
// and its schema refuses a value the manager would refuse.
func TestSluiceChart_GatewayAPIImplementation(t *testing.T) {
	g := NewWithT(t)
	objs, err := render("sluice", "sluice-system", chartCase{chart: "sluice"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(containerArgs(g, find(objs, "Deployment")[0])).To(ContainElement("--gateway-api-implementation=traefik"))
	objs, err = render("sluice", "sluice-system", chartCase{chart: "sluice"}, "--set", "routers.gatewayapi.implementation=envoy-gateway")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(containerArgs(g, find(objs, "Deployment")[0])).To(ContainElement("--gateway-api-implementation=envoy-gateway"))
	_, err = render("sluice", "sluice-system", chartCase{chart: "sluice"}, "--set", "routers.gatewayapi.implementation=haproxy")
	g.Expect(err).To(MatchError(ContainSubstring("implementation")))
}
