package nginx

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// cookieHeader is the match header that names a cookie, as in Flagger:
// headers: {cookie: {exact: <cookie name>}} routes the requests carrying
// that cookie with the value "always" to the canary (ingress-nginx's
// canary-by-cookie).
const cookieHeader = "cookie"

// match is what ingress-nginx can route to the canary: one header (with an
// exact value or a regular expression) and one cookie.
type match struct {
	header, value, pattern, cookie string
}

// abMatch translates the analysis matches into ingress-nginx's: a prefix or
// suffix becomes an anchored pattern. Anything else (a second header, a URI
// or method match) is an error naming what to remove.
func abMatch(ms []sluicev1beta1.HTTPMatchRequest) (match, error) {
	var m match
	for i, r := range ms {
		if r.URI != nil || r.Method != nil || r.Scheme != nil || r.Authority != nil || len(r.QueryParams) > 0 || len(r.SourceLabels) > 0 || r.Port != 0 || len(r.Gateways) > 0 {
			return m, fmt.Errorf("provider nginx matches one header and one cookie only: remove analysis.match[%d] fields other than headers", i)
		}
		names := make([]string, 0, len(r.Headers))
		for k := range r.Headers {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			v := r.Headers[k]
			if k == cookieHeader {
				if v.Exact == "" || m.cookie != "" && m.cookie != v.Exact {
					return m, fmt.Errorf("provider nginx matches one cookie, named by analysis.match[%d].headers.cookie.exact", i)
				}
				m.cookie = v.Exact
				continue
			}
			if m.header != "" {
				return m, fmt.Errorf("provider nginx matches one header only: analysis.match names %s and %s", m.header, k)
			}
			m.header = k
			switch {
			case v.Exact != "":
				m.value = v.Exact
			case v.Regex != "":
				m.pattern = v.Regex
			case v.Prefix != "":
				m.pattern = "^" + regexp.QuoteMeta(v.Prefix) + ".*"
			case v.Suffix != "":
				m.pattern = ".*" + regexp.QuoteMeta(v.Suffix) + "$"
			}
		}
	}
	return m, nil
}

// render returns the canary Ingress for the given routes.
func (r *Router) render(c *sluicev1beta1.Canary, src *networkingv1.Ingress, routes router.Routes) (*unstructured.Unstructured, error) {
	apex, _, canary := c.ServiceNames()
	spec, err := router.IngressPaths(src, apex, func(p networkingv1.HTTPIngressPath) []networkingv1.HTTPIngressPath {
		p.Backend.Service.Name = canary
		return []networkingv1.HTTPIngressPath{p}
	})
	if err != nil {
		return nil, err
	}
	ann := router.UserAnnotations(src, r.key("canary"))
	ann[r.key("canary")] = "true"
	// Outside an A/B match, canary-weight decides; at weight 0 the canary
	// Ingress stays in place and sends nothing (as Flagger does).
	ann[r.key("canary-weight")] = strconv.Itoa(int(routes.CanaryWeight))
	if a := c.Spec.Analysis; a != nil && len(a.Match) > 0 && routes.CanaryWeight > 0 {
		m, err := abMatch(a.Match)
		if err != nil {
			return nil, err
		}
		// Only the matching requests go to the canary.
		ann[r.key("canary-weight")] = "0"
		set := func(k, v string) {
			if v != "" {
				ann[r.key(k)] = v
			}
		}
		set("canary-by-header", m.header)
		set("canary-by-header-value", m.value)
		set("canary-by-header-pattern", m.pattern)
		set("canary-by-cookie", m.cookie)
	}
	return router.IngressObject(c, src, ann, spec)
}

// routingKeys are the annotations whose presence is routing state.
func (r *Router) routingKeys() []string {
	return []string{r.key("canary-by-header"), r.key("canary-by-header-value"), r.key("canary-by-header-pattern"), r.key("canary-by-cookie")}
}
