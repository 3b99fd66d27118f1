// Stand-in for github.com/traefik/traefik/dynamic/ext, a nested module of
// Traefik that module zips leave out. Traefik embeds its two types inline in
// its dynamic configuration; extensions are not used by Sluice's stack.
module github.com/traefik/traefik/dynamic/ext

go 1.26.0
