// Command routerdocs writes the capability table of docs/routers.md from the
// routers Sluice registers (pkg/router/providers), so the docs cannot drift
// from what the routers declare. With -check it writes nothing and fails
// when the table is stale (make verify).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/sluice-cd/sluice/pkg/router"
	"github.com/sluice-cd/sluice/pkg/router/providers"
)

func main() {
	check := flag.Bool("check", false, "fail when the table is stale instead of writing it")
	path := flag.String("doc", "docs/routers.md", "the document holding the table between the markers")
	flag.Parse()
	if err := run(*path, *check); err != nil {
		fmt.Fprintln(os.Stderr, "routerdocs:", err)
		os.Exit(1)
	}
}

func run(path string, check bool) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	r := router.NewRegistry()
	providers.RegisterAll(r, providers.Options{})
	out, err := providers.Splice(doc, providers.Table(r))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if bytes.Equal(out, doc) {
		return nil
	}
	if check {
		return fmt.Errorf("the capability table of %s is stale: run 'make generate' (go run ./hack/routerdocs) and commit the result", path)
	}
	return os.WriteFile(path, out, 0o644) //nolint:gosec // G306: a document of the repository, world-readable like the others.
}
