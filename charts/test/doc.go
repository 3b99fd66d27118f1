// Package charttest tests the Helm charts of charts/ with real binaries:
// helm (built by `make tools` from the Go module proxy) lints and renders
// them, the rendered manifests are applied to a real kube-apiserver
// (pkg/testenv), and the sluice manager, built from cmd/sluice and run with
// the chart's arguments as the chart's ServiceAccount (impersonation),
// completes a canary rollout, proving the generated RBAC sufficient.
package charttest
