package main

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// validateIngressAnnotationsPrefix refuses a prefix that cannot start an
// annotation key: the nginx router writes <prefix>/canary and the API server
// would refuse every Ingress it generates, at release time rather than at
// start. The prefix is the DNS subdomain part of a qualified name.
func validateIngressAnnotationsPrefix(prefix string) error {
	if prefix == "" {
		return fmt.Errorf("--ingress-annotations-prefix must not be empty; ingress-nginx's default is nginx.ingress.kubernetes.io")
	}
	if errs := validation.IsDNS1123Subdomain(prefix); len(errs) > 0 {
		return fmt.Errorf("--ingress-annotations-prefix must be the --annotations-prefix of ingress-nginx, a DNS subdomain such as nginx.ingress.kubernetes.io, not %q: %s", prefix, strings.Join(errs, "; "))
	}
	return nil
}
