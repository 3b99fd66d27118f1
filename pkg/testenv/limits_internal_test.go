package testenv

import (
	"testing"

	. "github.com/onsi/gomega"
)

// TestControllerProcs_WithoutClientLimits: the option lifts the limits of
// kube-controller-manager and kube-scheduler, and only theirs (kwok has no
// such flag: its client is unlimited already). That both binaries accept
// the flags is TestWithControllers_DeploymentBecomesAvailable's part.
func TestControllerProcs_WithoutClientLimits(t *testing.T) {
	g := NewWithT(t)
	lifted := []string{"--kube-api-qps=5000", "--kube-api-burst=10000"}
	for _, p := range controllerProcs("kc", "stages", false) {
		g.Expect(p.args).NotTo(ContainElements(lifted), p.name)
		g.Expect(p.args).To(ContainElement("--kubeconfig=kc"), p.name)
	}
	procs := controllerProcs("kc", "stages", true)
	g.Expect(procs).To(HaveLen(3))
	for _, p := range procs {
		if p.name == "kwok" {
			g.Expect(p.args).NotTo(ContainElement("--kube-api-qps=5000"))
			g.Expect(p.args).To(ContainElement("--config=stages"))
			continue
		}
		g.Expect(p.args).To(ContainElements(lifted), p.name)
	}
}
