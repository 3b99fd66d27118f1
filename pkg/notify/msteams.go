package notify

import (
	"context"
	"strings"
)

// msteams posts an Adaptive Card to a Microsoft Teams Workflows (Power
// Automate) webhook. The Office 365 connectors and their MessageCard format
// are retired.
type msteams struct{ p *poster }

// Post sends the event.
func (n *msteams) Post(ctx context.Context, e Event) error {
	_, err := n.p.postJSON(ctx, teamsPayload(newMessage(e)))
	return err
}

type teamsMessage struct {
	Type        string            `json:"type"`
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string    `json:"contentType"`
	Content     teamsCard `json:"content"`
}

type teamsCard struct {
	Schema  string         `json:"$schema"`
	Type    string         `json:"type"`
	Version string         `json:"version"`
	MSTeams map[string]any `json:"msteams,omitempty"`
	Body    []any          `json:"body"`
}

type teamsText struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Wrap     bool   `json:"wrap"`
	Weight   string `json:"weight,omitempty"`
	Size     string `json:"size,omitempty"`
	Color    string `json:"color,omitempty"`
	IsSubtle bool   `json:"isSubtle,omitempty"`
	FontType string `json:"fontType,omitempty"`
}

type teamsFactSet struct {
	Type  string      `json:"type"`
	Facts []teamsFact `json:"facts"`
}

type teamsFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// teamsColor maps the severity to an Adaptive Card color.
func teamsColor(severity string) string {
	switch severity {
	case SeverityError:
		return "Attention"
	case SeverityWarn:
		return "Warning"
	}
	return "Accent"
}

// teamsPayload renders the message as an Adaptive Card in a message envelope.
func teamsPayload(m message) teamsMessage {
	body := []any{
		teamsText{Type: "TextBlock", Text: m.Headline, Wrap: true, Weight: "Bolder", Size: "Medium", Color: teamsColor(m.Severity)},
	}
	if m.Text != "" {
		body = append(body, teamsText{Type: "TextBlock", Text: m.Text, Wrap: true})
	}
	facts := teamsFactSet{Type: "FactSet"}
	for _, f := range m.Fields {
		facts.Facts = append(facts.Facts, teamsFact{Title: f.Title, Value: markdownValue(f)})
	}
	body = append(body, facts)
	if m.Code != "" {
		body = append(body, teamsText{Type: "TextBlock", Text: m.Code, Wrap: true, FontType: "Monospace", Color: teamsColor(m.Severity)})
	}
	if len(m.Checks) > 0 {
		body = append(body,
			teamsText{Type: "TextBlock", Text: m.ListTitle, Wrap: true, Weight: "Bolder"},
			teamsText{Type: "TextBlock", Text: "- " + strings.Join(m.Checks, "\n- "), Wrap: true})
	}
	body = append(body, teamsText{Type: "TextBlock", Text: contextLine(m), Wrap: true, IsSubtle: true, Size: "Small"})
	return teamsMessage{
		Type: "message",
		Attachments: []teamsAttachment{{
			ContentType: "application/vnd.microsoft.card.adaptive",
			Content: teamsCard{
				Schema:  "http://adaptivecards.io/schemas/adaptive-card.json",
				Type:    "AdaptiveCard",
				Version: "1.4",
				MSTeams: map[string]any{"width": "Full"},
				Body:    body,
			},
		}},
	}
}

// markdownValue is a field's value, linked in Markdown when it has a URL.
func markdownValue(f field) string {
	if f.URL == "" {
		return f.Value
	}
	return "[" + f.Value + "](" + f.URL + ")"
}

// contextLine is "Reason: X | Severity: Y | time".
func contextLine(m message) string {
	var parts []string
	if m.Reason != "" {
		parts = append(parts, "Reason: "+m.Reason)
	}
	parts = append(parts, "Severity: "+m.Severity)
	if !m.Time.IsZero() {
		parts = append(parts, m.Time.Format("2006-01-02T15:04:05Z07:00"))
	}
	return strings.Join(parts, " | ")
}
