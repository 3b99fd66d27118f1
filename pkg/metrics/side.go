package metrics

import "strings"

// canaryService is how the builtin queries of Traefik and the Gateway API
// (through Traefik) name the canary's Service in a series label:
// <namespace>-<apex>-canary-<port>.
const canaryService = "{{ service }}-canary-"

// SideQuery is the query template that measures a compared side of a
// metric (spec.analysis.baseline, metrics[].compare) once it is rendered
// with {{ target }} and {{ service }} naming that side's Deployment and
// Service (<target>-baseline and <apex>-baseline, or the primary's). Istio's
// builtins select by {{ target }} and need nothing; Traefik's and the
// Gateway API's name the canary's Service as "{{ service }}-canary-", which
// for {{ service }} = <apex>-baseline would select no series: the -canary
// suffix goes, so that they select <namespace>-<apex>-baseline-<port>. A
// MetricTemplate written the same way is measured the same way.
func SideQuery(query string) string {
	return strings.ReplaceAll(query, canaryService, "{{ service }}-")
}
