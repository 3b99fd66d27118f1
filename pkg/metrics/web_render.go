package metrics

import (
	"errors"
	"fmt"
	"strings"
)

// renderWeb renders the URL and the body of a web template with the Canary's
// model, as the query is: a web metric's request usually names the service
// it measures. The rendered URL is the client's address, so each Canary
// gets its own cached client.
func renderWeb(t target, model Model) (target, error) {
	// The host is never a template: a Canary's templateVariables would then
	// choose where the template's credentials go.
	rest := t.address
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	host := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		host = rest[:i]
	}
	if strings.Contains(host, "{{") {
		return t, errors.New("spec.provider.address: the host of a web address cannot be a template (a Canary's variables would choose where the credentials go): use templates in its path or query")
	}
	address, err := Render(t.address, model)
	if err != nil {
		return t, fmt.Errorf("spec.provider.address: %w", err)
	}
	t.address = address
	if t.provider != nil && t.provider.Body != "" {
		p := *t.provider
		if p.Body, err = Render(p.Body, model); err != nil {
			return t, fmt.Errorf("spec.provider.body: %w", err)
		}
		t.provider = &p
	}
	return t, nil
}
