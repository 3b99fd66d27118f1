package cli

import (
	"context"
	"net"
	"strconv"
	"testing"

	. "github.com/onsi/gomega"
)

// The page itself is tested in pkg/dashboard (server and browser tests,
// through this command); these are the command's own refusals.
func TestDashboard_RefusesABadOrBusyPort(t *testing.T) {
	g := NewWithT(t)
	r := kubectlSluice(context.Background(), "", "dashboard", "--port", "70000")
	g.Expect(r.err).To(MatchError(ContainSubstring("--port must be between 0 and 65535")))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	r = kubectlSluice(context.Background(), "", "dashboard", "--port", port)
	g.Expect(r.err).To(MatchError(ContainSubstring("failed to listen on 127.0.0.1:" + port + " (is it in use? try --port 0)")))
}
