package metrics

import "fmt"

// renderWeb renders the URL and the body of a web template with the Canary's
// model, as the query is: a web metric's request usually names the service
// it measures. The rendered URL is the client's address, so each Canary
// gets its own cached client.
func renderWeb(t target, model Model) (target, error) {
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
