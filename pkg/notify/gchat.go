package notify

import (
	"context"
	"html"
	"strings"
)

// gchat posts a cards v2 message to a Google Chat incoming webhook.
type gchat struct{ p *poster }

// Post sends the event.
func (n *gchat) Post(ctx context.Context, e Event) error {
	_, err := n.p.postJSON(ctx, gchatPayload(newMessage(e)))
	return err
}

type gchatMessage struct {
	CardsV2 []gchatCardWithID `json:"cardsV2"`
}

type gchatCardWithID struct {
	CardID string    `json:"cardId"`
	Card   gchatCard `json:"card"`
}

type gchatCard struct {
	Header   gchatHeader    `json:"header"`
	Sections []gchatSection `json:"sections"`
}

type gchatHeader struct {
	Title    string `json:"title"`
	Subtitle string `json:"subtitle,omitempty"`
}

type gchatSection struct {
	Header  string        `json:"header,omitempty"`
	Widgets []gchatWidget `json:"widgets"`
}

type gchatWidget struct {
	TextParagraph *gchatText      `json:"textParagraph,omitempty"`
	DecoratedText *gchatDecorated `json:"decoratedText,omitempty"`
}

type gchatText struct {
	Text string `json:"text"`
}

type gchatDecorated struct {
	TopLabel string `json:"topLabel"`
	Text     string `json:"text"`
}

// gchatColor is the HTML color of a severity (Chat text supports <font>).
func gchatColor(severity string) string {
	switch severity {
	case SeverityError:
		return "#FF0000"
	case SeverityWarn:
		return "#FFA500"
	}
	return "#0076D7"
}

// gchatPayload renders the message as one card. Chat text is a subset of
// HTML, so values are escaped.
func gchatPayload(m message) gchatMessage {
	var widgets []gchatWidget
	if m.Text != "" {
		widgets = append(widgets, gchatWidget{TextParagraph: &gchatText{
			Text: `<font color="` + gchatColor(m.Severity) + `">` + html.EscapeString(m.Text) + `</font>`,
		}})
	}
	for _, f := range m.Fields {
		text := html.EscapeString(f.Value)
		if f.URL != "" {
			text = `<a href="` + html.EscapeString(f.URL) + `">` + text + `</a>`
		}
		widgets = append(widgets, gchatWidget{DecoratedText: &gchatDecorated{TopLabel: f.Title, Text: text}})
	}
	sections := []gchatSection{{Widgets: widgets}}
	if m.Code != "" {
		sections = append(sections, gchatSection{Header: "Error", Widgets: []gchatWidget{{TextParagraph: &gchatText{
			Text: strings.ReplaceAll(html.EscapeString(m.Code), "\n", "<br>")}}}})
	}
	if len(m.Checks) > 0 {
		esc := make([]string, len(m.Checks))
		for i, c := range m.Checks {
			esc[i] = "• " + html.EscapeString(c)
		}
		sections = append(sections, gchatSection{Header: m.ListTitle, Widgets: []gchatWidget{{TextParagraph: &gchatText{Text: strings.Join(esc, "<br>")}}}})
	}
	sections = append(sections, gchatSection{Widgets: []gchatWidget{{TextParagraph: &gchatText{Text: html.EscapeString(contextLine(m))}}}})
	return gchatMessage{CardsV2: []gchatCardWithID{{
		CardID: "sluice-release",
		Card:   gchatCard{Header: gchatHeader{Title: m.Title, Subtitle: m.Subtitle}, Sections: sections},
	}}}
}
