package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/sluice-cd/sluice/pkg/notify"
)

// notifierOptions are Flagger's global notifier flags. Flagger took the
// webhook URLs as flag values (-slack-url, -msteams-url), which every user
// of the node sees in the process list; Sluice reads them from files (a
// mounted Secret) and refuses the URL flags with a message pointing at the
// file form, so a migrated Deployment fails at start rather than leak.
type notifierOptions struct {
	SlackURLFile   string
	SlackChannel   string
	SlackUser      string
	MSTeamsURLFile string
	// Set when the refused flags are given, whatever their value; the
	// value itself is never kept.
	slackURLGiven   bool
	msteamsURLGiven bool
}

// refusedFlag records that a refused flag was given and drops its value.
type refusedFlag struct{ given *bool }

func (f refusedFlag) String() string { return "" }
func (f refusedFlag) Set(string) error {
	*f.given = true
	return nil
}

func (o *notifierOptions) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.SlackURLFile, "slack-url-file", o.SlackURLFile, "File (mounted from a Secret) holding the Slack webhook URL that receives the notifications of Canaries without analysis.alerts (Flagger's -slack-url).")
	fs.StringVar(&o.SlackChannel, "slack-channel", o.SlackChannel, "Slack channel of --slack-url-file's notifications (default "+notify.DefaultChannel+").")
	fs.StringVar(&o.SlackUser, "slack-user", o.SlackUser, "Slack user name of --slack-url-file's notifications (default "+notify.DefaultUsername+").")
	fs.StringVar(&o.MSTeamsURLFile, "msteams-url-file", o.MSTeamsURLFile, "File (mounted from a Secret) holding the Microsoft Teams Workflows webhook URL that receives the notifications of Canaries without analysis.alerts (Flagger's -msteams-url).")
	fs.Var(refusedFlag{&o.slackURLGiven}, "slack-url", "Refused: a URL in a flag is visible in the process list; use --slack-url-file.")
	fs.Var(refusedFlag{&o.msteamsURLGiven}, "msteams-url", "Refused: a URL in a flag is visible in the process list; use --msteams-url-file.")
}

func (o *notifierOptions) validate() []error {
	var errs []error
	if o.slackURLGiven {
		errs = append(errs, errors.New("--slack-url is refused: a webhook URL is a credential and a flag's value is visible in the process list; write it to a file (mount a Secret) and pass --slack-url-file (the chart's notifications.slack.urlSecret does this)"))
	}
	if o.msteamsURLGiven {
		errs = append(errs, errors.New("--msteams-url is refused: a webhook URL is a credential and a flag's value is visible in the process list; write it to a file (mount a Secret) and pass --msteams-url-file (the chart's notifications.msteams.urlSecret does this)"))
	}
	if o.SlackURLFile == "" && (o.SlackChannel != "" || o.SlackUser != "") {
		errs = append(errs, fmt.Errorf("--slack-channel and --slack-user need --slack-url-file"))
	}
	return errs
}

// globals are the Dispatcher's global notifiers; their files are read by
// the Dispatcher, which checks them at start.
func (o notifierOptions) globals() []notify.GlobalNotifier {
	var gs []notify.GlobalNotifier
	if o.SlackURLFile != "" {
		gs = append(gs, notify.GlobalNotifier{Type: notify.TypeSlack, AddressFile: o.SlackURLFile, Channel: o.SlackChannel, Username: o.SlackUser})
	}
	if o.MSTeamsURLFile != "" {
		gs = append(gs, notify.GlobalNotifier{Type: notify.TypeMSTeams, AddressFile: o.MSTeamsURLFile})
	}
	return gs
}
