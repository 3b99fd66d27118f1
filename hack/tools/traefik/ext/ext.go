// Package ext stands in for Traefik's dynamic configuration extension points
// (github.com/traefik/traefik/dynamic/ext), which the published Traefik module
// zip does not contain. Both types are empty: no extension is compiled in.
package ext

// HTTP holds extension fields of the HTTP dynamic configuration.
type HTTP struct{}

// Router holds extension fields of an HTTP router.
type Router struct{}
