package notify

import (
	"context"
	"strings"
)

// Discord limits of an embed.
const (
	discordTitleMax = 256
	discordDescMax  = 4096
	discordValueMax = 1024
)

// discord posts an embed to a Discord webhook.
type discord struct {
	p        *poster
	username string
}

// Post sends the event.
func (n *discord) Post(ctx context.Context, e Event) error {
	_, err := n.p.postJSON(ctx, discordPayload(newMessage(e), n.username))
	return err
}

type discordMessage struct {
	Username string         `json:"username,omitempty"`
	Content  string         `json:"content,omitempty"`
	Embeds   []discordEmbed `json:"embeds"`
}

type discordEmbed struct {
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	Color       int            `json:"color"`
	Fields      []discordField `json:"fields,omitempty"`
	Footer      *discordFooter `json:"footer,omitempty"`
	Timestamp   string         `json:"timestamp,omitempty"`
}

type discordField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

type discordFooter struct {
	Text string `json:"text"`
}

// colorOf is the RGB color of a severity (blue, orange, red).
func colorOf(severity string) int {
	switch severity {
	case SeverityError:
		return 0xFF0000
	case SeverityWarn:
		return 0xFFA500
	}
	return 0x0076D7
}

// discordPayload renders the message as one embed.
func discordPayload(m message, username string) discordMessage {
	embed := discordEmbed{
		Title:       truncate(m.Headline, discordTitleMax),
		Description: truncate(m.Text, discordDescMax),
		Color:       colorOf(m.Severity),
	}
	for _, f := range m.Fields {
		embed.Fields = append(embed.Fields, discordField{Name: f.Title, Value: truncate(markdownValue(f), discordValueMax), Inline: true})
	}
	if m.Code != "" {
		embed.Fields = append(embed.Fields, discordField{Name: "Error", Value: "```\n" + truncate(m.Code, discordValueMax-8) + "\n```"})
	}
	if len(m.Checks) > 0 {
		embed.Fields = append(embed.Fields, discordField{Name: m.ListTitle, Value: truncate("- "+strings.Join(m.Checks, "\n- "), discordValueMax)})
	}
	footer := "Severity: " + m.Severity
	if m.Reason != "" {
		footer = "Reason: " + m.Reason + " | " + footer
	}
	embed.Footer = &discordFooter{Text: footer}
	if !m.Time.IsZero() {
		embed.Timestamp = m.Time.Format("2006-01-02T15:04:05Z07:00")
	}
	return discordMessage{Username: username, Embeds: []discordEmbed{embed}}
}
