package router_test

import (
	"regexp"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/router/gatewayapi"
	"github.com/sluice-cd/sluice/pkg/router/istio"
	"github.com/sluice-cd/sluice/pkg/router/traefik"
)

// Each router's builtins, rendered for the baseline (metrics.SideQuery with
// {{ target }} = web-baseline and {{ service }} = web-baseline, as a
// compared metric renders them), select the series of the baseline's pods
// and neither the canary's nor the primary's: the data planes' label
// values are matched against the rendered selectors.
func TestBuiltinQuery_SelectsTheBaselineSeries(t *testing.T) {
	series := map[string]map[string]string{ // provider → side → label value
		"traefik": {
			"baseline": "ns-web-baseline-80@kubernetescrd", "canary": "ns-web-canary-80@kubernetescrd", "primary": "ns-web-primary-80@kubernetescrd"},
		"gatewayapi": {
			"baseline": "httproute-ns-web-rule-0-svc-ns-web-baseline-80@kubernetesgateway",
			"canary":   "httproute-ns-web-rule-0-svc-ns-web-canary-80@kubernetesgateway",
			"primary":  "httproute-ns-web-rule-0-svc-ns-web-primary-80@kubernetesgateway"},
		"istio": {"baseline": "web-baseline", "canary": "web", "primary": "web-primary"},
	}
	selector := regexp.MustCompile(`(?:service|destination_workload)=~"([^"]+)"`)
	for name, qs := range map[string]map[string]string{"traefik": traefik.Metrics, "gatewayapi": gatewayapi.Metrics, "istio": istio.Metrics} {
		for m, q := range qs {
			sides := map[string]metrics.Model{
				"canary":   {Namespace: "ns", Target: "web", Service: "web", Route: "web", Interval: time.Minute},
				"baseline": {Namespace: "ns", Target: "web-baseline", Service: "web-baseline", Route: "web", Interval: time.Minute},
			}
			for side, model := range sides {
				g := NewWithT(t)
				tmpl := q
				if side != "canary" {
					tmpl = metrics.SideQuery(q)
				}
				out, err := metrics.Render(tmpl, model)
				g.Expect(err).NotTo(HaveOccurred())
				sels := selector.FindAllStringSubmatch(out, -1)
				g.Expect(sels).NotTo(BeEmpty(), "%s %s: no selector in %s", name, m, out)
				for _, sel := range sels {
					re := regexp.MustCompile("^(?:" + sel[1] + ")$")
					for s, value := range series[name] {
						g.Expect(re.MatchString(value)).To(Equal(s == side), "%s %s for the %s: %q against the %s's series %q", name, m, side, sel[1], s, value)
					}
				}
			}
		}
	}
}
