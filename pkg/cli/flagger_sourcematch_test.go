package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	sigsyaml "sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/gatewayapi"
)

const sourceMatchCanary = `apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo}
spec:
  provider: %s
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service:
    port: 9898
    gatewayRefs: [{name: gateway}]
  analysis:
    interval: 1m
    threshold: 3
    iterations: 10
    match:
%s
    metrics:
      - name: request-success-rate
        thresholdRange: {min: 99}
        interval: 1m
`

// Given a gatewayapi Canary whose A/B match has an entry made only of
// sourceLabels (Flagger's gatewayapi tutorial), convert removes that entry,
// keeps the others byte for byte, and says so in a note; the converted
// Canary is one the gatewayapi router accepts. An entry that is the only
// one, or that mixes sourceLabels with a header, is left and warned about;
// other providers (istio matches source labels) are left alone.
func TestConvert_SourceLabelsMatch(t *testing.T) {
	abEntries := "      - headers:\n          x-canary: {exact: insider}\n      - sourceLabels:\n          app: tester\n        # the load tester's pods\n"
	tests := []struct {
		name, provider, match string
		want                  string // the match list after conversion
		severity              Severity
		message               string
	}{
		{name: "source-only entry among others is removed", provider: "gatewayapi:v1", match: abEntries,
			want:     "      - headers:\n          x-canary: {exact: insider}\n",
			severity: SeverityNote, message: "analysis.match[1] (sourceLabels) removed: the Gateway API cannot match who sends a request, and Flagger dropped this entry silently"},
		{name: "last entry in the middle", provider: "gatewayapi", match: "      - sourceNamespace: test\n      - queryParams:\n          canary: {exact: \"true\"}\n",
			want:     "      - queryParams:\n          canary: {exact: \"true\"}\n",
			severity: SeverityNote, message: "analysis.match[0] (sourceNamespace) removed"},
		{name: "the only entry stays", provider: "gatewayapi", match: "      - sourceLabels:\n          app: tester\n",
			want:     "      - sourceLabels:\n          app: tester\n",
			severity: SeverityWarning, message: "the Gateway API cannot match sourceLabels, sourceNamespace or gateways"},
		{name: "a mixed entry stays", provider: "gatewayapi", match: "      - headers:\n          x-canary: {exact: insider}\n      - sourceLabels: {app: tester}\n        headers:\n          x-b: {exact: \"1\"}\n",
			want:     "      - headers:\n          x-canary: {exact: insider}\n      - sourceLabels: {app: tester}\n        headers:\n          x-b: {exact: \"1\"}\n",
			severity: SeverityWarning, message: "the Gateway API cannot match sourceLabels"},
		{name: "istio keeps source labels", provider: "istio", match: abEntries, want: abEntries},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			in := fmt.Sprintf(sourceMatchCanary, tt.provider, tt.match)
			res, err := ConvertFlagger("c.yaml", []byte(in))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(string(res.Output)).To(Equal(fmt.Sprintf(
				"apiVersion: sluice.dev/v1beta1"+sourceMatchCanary[len("apiVersion: flagger.app/v1beta1"):], tt.provider, tt.want)))
			if tt.message != "" {
				g.Expect(res.Findings).To(ContainElement(And(HaveField("Severity", tt.severity), HaveField("Message", ContainSubstring(tt.message)))))
			}
			for _, f := range res.Findings {
				if tt.severity == SeverityNote {
					g.Expect(f.Severity).NotTo(Equal(SeverityWarning), f.String())
				} else {
					g.Expect(f.Message).NotTo(ContainSubstring(") removed"), "only gatewayapi entries made of source conditions, among others, are removed")
				}
			}
			if tt.severity != SeverityNote {
				return
			}
			var c sluicev1beta1.Canary
			g.Expect(sigsyaml.UnmarshalStrict(res.Output, &c)).To(Succeed())
			g.Expect(router.Unsupported(gatewayapi.New(nil), &c, c.Spec.Provider)).To(BeEmpty(), "the converted Canary runs")
		})
	}
}

// A gatewayapi Canary with portDiscovery and a generated route is warned
// about (the router stalls it); with routeRef, or another provider, it is not.
func TestConvert_GatewayAPIPortDiscovery(t *testing.T) {
	const canary = `apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo}
spec:
  provider: %s
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service:
    port: 9898
    portDiscovery: true%s
  analysis: {interval: 1m, threshold: 3, maxWeight: 50, stepWeight: 10}
`
	for _, tt := range []struct {
		provider, extra string
		warned          bool
	}{
		{provider: "gatewayapi:v1", warned: true},
		{provider: "gatewayapi:v1", extra: "\n    gatewayAPI: {routeRef: {name: shop}}"},
		{provider: "istio"},
	} {
		g := NewWithT(t)
		res, err := ConvertFlagger("c.yaml", []byte(fmt.Sprintf(canary, tt.provider, tt.extra)))
		g.Expect(err).NotTo(HaveOccurred())
		warned := ContainElement(And(HaveField("Severity", SeverityWarning), HaveField("Line", 9),
			HaveField("Message", ContainSubstring("portDiscovery with provider gatewayapi:v1: a generated route cannot send each port to its own backend port"))))
		if tt.warned {
			g.Expect(res.Findings).To(warned, tt.provider+tt.extra)
		} else {
			g.Expect(res.Findings).NotTo(warned, tt.provider+tt.extra)
		}
	}
}

// The Flagger Gateway API A/B tutorial converts to a Canary the gatewayapi
// router accepts, with its header and query matches kept.
func TestConvert_GatewayAPITutorialMatches(t *testing.T) {
	g := NewWithT(t)
	data, err := os.ReadFile(filepath.Join("..", "..", "api", "v1beta1", "testdata", "flagger", "gatewayapi-ab.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	res, err := ConvertFlagger("gatewayapi-ab.yaml", data)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(res.Output)).NotTo(ContainSubstring("sourceLabels"))
	for _, doc := range strings.Split(string(res.Output), "\n---") {
		var c sluicev1beta1.Canary
		if sigsyaml.Unmarshal([]byte(doc), &c) != nil || c.Kind != "Canary" {
			continue
		}
		g.Expect(c.Spec.Analysis.Match).To(HaveLen(2), "the header and the query parameter entries")
		g.Expect(router.Unsupported(gatewayapi.New(nil), &c, c.Spec.Provider)).To(BeEmpty())
		return
	}
	t.Fatal("no Canary in the converted tutorial")
}

// withoutRemovedSourceMatches drops from the input lines the gatewayapi
// match entries made only of source conditions that the output no longer
// has (dropSourceMatches), so the other lines can be compared one to one.
func withoutRemovedSourceMatches(in, out []string) []string {
	kept := make([]string, 0, len(in))
	skipping, indent := false, 0
	for _, l := range in {
		lead := len(l) - len(strings.TrimLeft(l, " "))
		if skipping && lead > indent && strings.TrimSpace(l) != "" {
			continue
		}
		skipping = false
		t := strings.TrimSpace(l)
		if (strings.HasPrefix(t, "- sourceLabels:") || strings.HasPrefix(t, "- sourceNamespace:") || strings.HasPrefix(t, "- gateways:")) && !slices.Contains(out, l) {
			skipping, indent = true, lead
			continue
		}
		kept = append(kept, l)
	}
	return kept
}
