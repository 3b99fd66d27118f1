package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// rocket posts a Slack-style attachment to a Rocket.Chat incoming webhook.
type rocket struct {
	p        *poster
	channel  string
	username string
}

// Post sends the event. Rocket.Chat answers 200 with {"success": false}
// when a webhook script rejects the message; that is an error too.
func (n *rocket) Post(ctx context.Context, e Event) error {
	body, err := n.p.postJSON(ctx, rocketPayload(newMessage(e), n.channel, n.username))
	if err != nil {
		return err
	}
	var answer struct {
		Success *bool  `json:"success"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(body, &answer) == nil && answer.Success != nil && !*answer.Success {
		return &Error{Provider: TypeRocket, StatusCode: 200, Permanent: true, msg: n.p.redact.clean(fmt.Sprintf("rocket: the webhook refused the message: %s", truncate(answer.Error, maxQuoted)))}
	}
	return nil
}

type rocketMessage struct {
	Channel     string             `json:"channel,omitempty"`
	Username    string             `json:"username,omitempty"`
	IconEmoji   string             `json:"icon_emoji,omitempty"`
	Text        string             `json:"text"`
	Attachments []rocketAttachment `json:"attachments"`
}

type rocketAttachment struct {
	Title  string        `json:"title"`
	Text   string        `json:"text,omitempty"`
	Color  string        `json:"color"`
	Fields []rocketField `json:"fields"`
	TS     string        `json:"ts,omitempty"`
}

type rocketField struct {
	Short bool   `json:"short"`
	Title string `json:"title"`
	Value string `json:"value"`
}

// rocketPayload renders the message as one attachment.
func rocketPayload(m message, channel, username string) rocketMessage {
	a := rocketAttachment{Title: m.Headline, Text: m.Text, Color: fmt.Sprintf("#%06X", colorOf(m.Severity))}
	for _, f := range m.Fields {
		a.Fields = append(a.Fields, rocketField{Short: true, Title: f.Title, Value: markdownValue(f)})
	}
	if m.Code != "" {
		a.Fields = append(a.Fields, rocketField{Title: "Error", Value: "```\n" + m.Code + "\n```"})
	}
	if len(m.Checks) > 0 {
		a.Fields = append(a.Fields, rocketField{Title: m.ListTitle, Value: "- " + strings.Join(m.Checks, "\n- ")})
	}
	a.Fields = append(a.Fields, rocketField{Title: "Details", Value: contextLine(m)})
	if !m.Time.IsZero() {
		a.TS = m.Time.Format("2006-01-02T15:04:05Z07:00")
	}
	return rocketMessage{Channel: channel, Username: username, IconEmoji: ":rocket:", Text: m.Fallback, Attachments: []rocketAttachment{a}}
}
