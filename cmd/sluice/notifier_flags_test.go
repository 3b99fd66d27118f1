package main

import (
	"flag"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/notify"
)

func parseOptions(t *testing.T, args ...string) Options {
	t.Helper()
	o := DefaultOptions()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	o.BindFlags(fs)
	NewWithT(t).Expect(fs.Parse(args)).To(Succeed())
	return o
}

// Flagger's URL flags are refused with a message pointing at the file
// form, and their value is kept nowhere.
func TestOptions_NotifierURLFlagsRefused(t *testing.T) {
	g := NewWithT(t)
	o := parseOptions(t, "--slack-url=https://hooks.slack.com/services/T0/B0/sekret", "--msteams-url", "https://prod.logic.azure.com/workflows/sekret2")
	err := o.Validate()
	g.Expect(err).To(MatchError(ContainSubstring("--slack-url is refused: a webhook URL is a credential and a flag's value is visible in the process list; write it to a file (mount a Secret) and pass --slack-url-file")))
	g.Expect(err).To(MatchError(ContainSubstring("--msteams-url is refused")))
	g.Expect(err.Error()).NotTo(ContainSubstring("sekret"))
	g.Expect(fmt.Sprintf("%+v", o)).NotTo(ContainSubstring("sekret"), "the value is not kept")
}

func TestOptions_NotifierFiles(t *testing.T) {
	g := NewWithT(t)
	o := parseOptions(t, "--slack-url-file=/etc/sluice/slack/url", "--slack-channel=releases", "--slack-user=sluice-prod",
		"--msteams-url-file=/etc/sluice/msteams/url", "--cluster-name=prod-eu")
	g.Expect(o.Validate()).To(Succeed())
	g.Expect(o.Notifiers.globals()).To(Equal([]notify.GlobalNotifier{
		{Type: notify.TypeSlack, AddressFile: "/etc/sluice/slack/url", Channel: "releases", Username: "sluice-prod"},
		{Type: notify.TypeMSTeams, AddressFile: "/etc/sluice/msteams/url"},
	}))
	g.Expect(parseOptions(t).Notifiers.globals()).To(BeEmpty())

	o = parseOptions(t, "--slack-channel=releases")
	g.Expect(o.Validate()).To(MatchError(ContainSubstring("--slack-channel and --slack-user need --slack-url-file")))
}
