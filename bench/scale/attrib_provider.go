package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/bench/internal/apicount"
)

// routingGroups name the provider of a request by the API group of the
// routing object it reads or writes: those kinds exist for one provider
// only, so even a cluster-wide LIST or WATCH of them is that provider's.
var routingGroups = map[string]string{
	"gateway.networking.k8s.io": sluicev1beta1.ProviderGatewayAPI,
	"networking.istio.io":       sluicev1beta1.ProviderIstio,
	"traefik.io":                sluicev1beta1.ProviderTraefik,
	"traefik.containo.us":       sluicev1beta1.ProviderTraefik,
}

// unattributed is the provider of a request that is about no one canary:
// the leader-election Lease, discovery, cluster-wide LISTs and WATCHes of
// shared kinds (Canaries, Deployments, Services, ConfigMaps, events).
const unattributed = "(none)"

// providerOf names the provider a recorded request is about. The rule, in
// order: (1) the routing object's API group (HTTPRoute → gatewayapi,
// VirtualService and DestinationRule → istio, TraefikService → traefik);
// (2) the canary the request was attributed to (its name in the path, or the
// object an event is about, see attribute), whose provider is fixed by its
// index: canary app-<i> uses providers[i mod 4]; (3) otherwise unattributed.
func providerOf(w write) string {
	_, res, _ := strings.Cut(w.Resource, " ")
	res, _, _ = strings.Cut(res, "/") // subresource
	if _, group, ok := strings.Cut(res, "."); ok {
		if p, ok := routingGroups[group]; ok {
			return p
		}
	}
	if i, ok := canaryIndex(w.Key.Name); ok {
		return providers[i%len(providers)]
	}
	return unattributed
}

// canaryIndex is i of the benchmark's canary name app-<i>.
func canaryIndex(name string) (int, bool) {
	digits, ok := strings.CutPrefix(name, "app-")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(digits)
	if err != nil || i < 0 {
		return 0, false
	}
	return i, true
}

// splitRecorded separates the proxy's recorded requests into writes and
// reads (dry runs are never recorded).
func splitRecorded(rec []write) (writes, reads []write) {
	for _, w := range rec {
		verb, _, _ := strings.Cut(w.Resource, " ")
		if apicount.IsWrite(verb) {
			writes = append(writes, w)
		} else {
			reads = append(reads, w)
		}
	}
	return writes, reads
}

// providerFigures are one provider's share of a run.
type providerFigures struct {
	provider      string
	canaries      int        // tracked canaries (those that started a release)
	steps         int        // analysis steps they took
	reads, writes int        // during the releases, attributed to the provider
	sw            stepWrites // writes of steps 2 … K−1, as attributeSteps counts them
	idle          int        // requests in the idle window attributed to the provider
}

// readsPerStep and writesPerStep divide the provider's requests during the
// releases by its canaries' steps.
func (p providerFigures) readsPerStep() float64  { return perOf(p.reads, p.steps) }
func (p providerFigures) writesPerStep() float64 { return perOf(p.writes, p.steps) }

func perOf(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// byProvider splits a run's recorded requests and tracks by provider, in
// the order of providers, then the unattributed requests (steps 0).
func byProvider(writes, reads, idle []write, tracks map[types.NamespacedName]*track, interval time.Duration) []providerFigures {
	out := make([]providerFigures, 0, len(providers)+1)
	index := map[string]int{}
	for _, p := range append(append([]string{}, providers...), unattributed) {
		index[p] = len(out)
		out = append(out, providerFigures{provider: p})
	}
	for _, w := range writes {
		out[index[providerOf(w)]].writes++
	}
	for _, w := range reads {
		out[index[providerOf(w)]].reads++
	}
	for _, w := range idle {
		out[index[providerOf(w)]].idle++
	}
	mine := map[string]map[types.NamespacedName]*track{}
	for k, t := range tracks {
		if mine[t.provider] == nil {
			mine[t.provider] = map[types.NamespacedName]*track{}
		}
		mine[t.provider][k] = t
		if i, ok := index[t.provider]; ok {
			out[i].canaries++
			out[i].steps += len(t.steps)
		}
	}
	for i := range out[:len(providers)] {
		out[i].sw = attributeSteps(writes, mine[out[i].provider], interval)
	}
	return out
}

// printProviders writes the per-provider table of one run (issue 22 §2).
func printProviders(w io.Writer, r *result, interval time.Duration) {
	figs := byProvider(r.writes, r.reads, r.idleReqs, r.tracks, interval)
	fmt.Fprintf(w, "\nPer provider, run %q (docs/scale.md \"Per provider\": a request is a provider's by its routing object's API group, "+
		"else by the canary named in its path or event; (none) is the Lease, discovery and cluster-wide LISTs and WATCHes):\n", r.label)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "provider\tcanaries\tsteps\treads per step per canary\twrites per analysis step per canary: mean / max\twhole release writes ÷ steps\tidle requests (req/s)")
	for _, p := range figs {
		idle := "–"
		if r.idleMeasured && r.idleFor > 0 {
			idle = fmt.Sprintf("%d (%.3f)", p.idle, float64(p.idle)/r.idleFor.Seconds())
		}
		if p.provider == unattributed {
			fmt.Fprintf(tw, "%s\t–\t–\t%d reads\t–\t%d writes\t%s\n", p.provider, p.reads, p.writes, idle)
			continue
		}
		steps := "–"
		if len(p.sw.perCanary) > 0 {
			steps = fmt.Sprintf("%.2f / %.2f", p.sw.perStep(), pctF(p.sw.perCanary, 1))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%s\t%.2f\t%s\n", p.provider, p.canaries, p.steps, p.readsPerStep(), steps, p.writesPerStep(), idle)
	}
	_ = tw.Flush()
}
