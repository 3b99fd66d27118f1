package notify

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/slack-go/slack"
)

// Slack limits (Block Kit): header text 150, section text 3000, 10 fields.
const (
	slackHeaderMax  = 150
	slackSectionMax = 3000
	slackFieldMax   = 2000
)

// slackNotifier posts Block Kit messages, to an incoming webhook or, with a
// bot token, through chat.postMessage to the channel.
type slackNotifier struct {
	p        *poster
	channel  string
	username string
	// api is set when a bot token is used.
	api *slack.Client
	// botUsername is sent to chat.postMessage only when spec.username is set.
	botUsername string
}

// newSlack builds the Slack notifier. With a token, the address (if any) is
// the base URL of the Slack Web API (a trailing /chat.postMessage is
// accepted, as in Flagger); otherwise, or when the address is an incoming
// webhook (https://hooks.slack.com/services/...), the address is used as an
// incoming webhook and the token is not sent.
func newSlack(cfg config, p *poster, defaultAPI string) *slackNotifier {
	n := &slackNotifier{p: p, channel: cfg.channel, username: cfg.username}
	if cfg.token == "" || isSlackWebhook(cfg.address) {
		return n
	}
	api := defaultAPI
	if cfg.address != "" {
		api = strings.TrimSuffix(strings.TrimSuffix(cfg.address, "/"), "/chat.postMessage") + "/"
	}
	n.api = slack.New(cfg.token, slack.OptionAPIURL(api), slack.OptionHTTPClient(p.client))
	if cfg.usernameSet {
		n.botUsername = cfg.username
	}
	return n
}

// Post sends the event.
func (n *slackNotifier) Post(ctx context.Context, e Event) error {
	m := newMessage(e)
	blocks := slackBlocks(m)
	ctx, cancel := context.WithTimeout(ctx, n.p.timeout)
	defer cancel()
	if n.api != nil {
		opts := []slack.MsgOption{slack.MsgOptionText(m.Fallback, false), slack.MsgOptionBlocks(blocks...)}
		if n.botUsername != "" {
			opts = append(opts, slack.MsgOptionUsername(n.botUsername))
		}
		_, _, err := n.api.PostMessageContext(ctx, n.channel, opts...)
		return n.slackError(err)
	}
	msg := slackWebhookMessage(m, n.channel, n.username)
	return n.slackError(slack.PostWebhookCustomHTTPContext(ctx, n.p.address, n.p.client, msg))
}

// slackWebhookMessage is the incoming-webhook payload.
func slackWebhookMessage(m message, channel, username string) *slack.WebhookMessage {
	return &slack.WebhookMessage{
		Channel:   channel,
		Username:  username,
		IconEmoji: ":rocket:",
		Text:      m.Fallback,
		Blocks:    &slack.Blocks{BlockSet: slackBlocks(m)},
	}
}

// slackError classifies and redacts an error of slack-go.
func (n *slackNotifier) slackError(err error) error {
	if err == nil {
		return nil
	}
	r := n.p.redact
	var api slack.SlackErrorResponse
	var status slack.StatusCodeError
	var limited *slack.RateLimitedError
	switch {
	case errors.As(err, &api):
		// An error answer of the Web API (channel_not_found, invalid_auth, ...).
		return &Error{Provider: TypeSlack, Permanent: true, msg: r.clean("slack: chat.postMessage failed: " + api.Err)}
	case errors.As(err, &limited):
		return &Error{Provider: TypeSlack, StatusCode: 429, msg: r.clean("slack: " + limited.Error())}
	case errors.As(err, &status):
		return r.statusError(TypeSlack, status.Code, nil)
	}
	return r.transportError(TypeSlack, err)
}

// slackEmoji marks the severity.
func slackEmoji(severity string) string {
	switch severity {
	case SeverityError:
		return ":red_circle:"
	case SeverityWarn:
		return ":warning:"
	}
	return ":large_blue_circle:"
}

// slackBlocks renders the message as Block Kit blocks: a header, the text,
// the canary's fields, the failed checks and a context line with the
// reason, the severity and the time.
func slackBlocks(m message) []slack.Block {
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, truncate(m.Headline, slackHeaderMax), false, false)),
	}
	if m.Text != "" {
		text := slackEmoji(m.Severity) + " " + slackEscape(m.Text)
		blocks = append(blocks, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, truncate(text, slackSectionMax), false, false), nil, nil))
	}
	fields := make([]*slack.TextBlockObject, 0, len(m.Fields))
	for _, f := range m.Fields {
		fields = append(fields, slack.NewTextBlockObject(slack.MarkdownType, truncate(fmt.Sprintf("*%s*\n%s", f.Title, slackValue(f)), slackFieldMax), false, false))
	}
	blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))
	if m.Code != "" {
		// Truncated before the fence so that the block stays a code block.
		code := "```\n" + truncate(slackEscape(m.Code), slackSectionMax-8) + "\n```"
		blocks = append(blocks, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, code, false, false), nil, nil))
	}
	if len(m.Checks) > 0 {
		var b strings.Builder
		b.WriteString("*" + m.ListTitle + "*")
		for _, c := range m.Checks {
			b.WriteString("\n• " + slackEscape(c))
		}
		blocks = append(blocks, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, truncate(b.String(), slackSectionMax), false, false), nil, nil))
	}
	ctx := []string{"Severity: " + m.Severity}
	if m.Reason != "" {
		ctx = append([]string{"Reason: " + slackEscape(m.Reason)}, ctx...)
	}
	if !m.Time.IsZero() {
		ctx = append(ctx, m.Time.Format("2006-01-02T15:04:05Z07:00"))
	}
	blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, strings.Join(ctx, " | "), false, false)))
	return blocks
}

// slackValue is a field's value, linked when it has a URL.
func slackValue(f field) string {
	if f.URL == "" {
		return slackEscape(f.Value)
	}
	return "<" + f.URL + "|" + slackEscape(f.Value) + ">"
}

// slackEscape escapes the characters Slack's mrkdwn reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// isSlackWebhook tells whether address is an incoming webhook URL.
func isSlackWebhook(address string) bool {
	u, err := url.Parse(address)
	return err == nil && address != "" && (u.Host == "hooks.slack.com" || strings.HasPrefix(u.Path, "/services/"))
}
