package sluiceproc

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// deps lists the packages cmd/sluice links with the given build tags.
func deps(t *testing.T, tags string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-tags", tags, "./cmd/sluice")
	cmd.Dir = "../../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return strings.Fields(string(out))
}

// TestBuildTags_DropThePluginPackage: the build tags keep the standard
// library's "plugin" package (imported by kustomize's Go plugin loader) out
// of the manager. If kustomize renames its tag, "plugin" comes back and the
// binary grows by its exported symbols; this test then fails.
func TestBuildTags_DropThePluginPackage(t *testing.T) {
	if !slices.Contains(deps(t, ""), "plugin") {
		t.Log(`cmd/sluice no longer imports "plugin" even without the tags; BuildTags may be dropped`)
	}
	if got := deps(t, BuildTags); slices.Contains(got, "plugin") {
		t.Fatalf(`cmd/sluice built with -tags %s still imports "plugin"`, BuildTags)
	}
}
