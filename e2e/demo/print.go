package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// printer writes the narration, in colour on a terminal.
type printer struct {
	w     io.Writer
	color bool
	start time.Time
}

func newPrinter(f *os.File) *printer {
	st, err := f.Stat()
	tty := err == nil && st.Mode()&os.ModeCharDevice != 0 && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
	return &printer{w: f, color: tty, start: time.Now()}
}

const (
	bold   = "1"
	dim    = "2"
	red    = "31"
	green  = "32"
	yellow = "33"
	blue   = "34"
	cyan   = "36"
)

func (p *printer) paint(code, s string) string {
	if !p.color {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (p *printer) clock() string {
	d := time.Since(p.start).Round(time.Second)
	return p.paint(dim, fmt.Sprintf("[%02d:%02d]", int(d.Minutes()), int(d.Seconds())%60))
}

func (p *printer) title(s string) {
	fmt.Fprintln(p.w, p.paint(bold, s))
	fmt.Fprintln(p.w, p.paint(dim, strings.Repeat("─", len([]rune(s)))))
}

func (p *printer) blank() { fmt.Fprintln(p.w) }

func (p *printer) say(format string, a ...any) {
	fmt.Fprintf(p.w, "  "+format+"\n", a...)
}

func (p *printer) step(format string, a ...any) {
	fmt.Fprintf(p.w, "%s %s %s\n", p.clock(), p.paint(blue, "▸"), p.paint(bold, fmt.Sprintf(format, a...)))
}

func (p *printer) section(format string, a ...any) {
	fmt.Fprintln(p.w)
	fmt.Fprintf(p.w, "%s %s\n", p.clock(), p.paint(bold+";"+cyan, "── "+fmt.Sprintf(format, a...)+" ──"))
}

func (p *printer) event(format string, a ...any) {
	fmt.Fprintf(p.w, "%s   %s\n", p.clock(), fmt.Sprintf(format, a...))
}

func (p *printer) ok(format string, a ...any) {
	fmt.Fprintf(p.w, "%s %s %s\n", p.clock(), p.paint(green, "✔"), fmt.Sprintf(format, a...))
}

func (p *printer) bad(format string, a ...any) {
	fmt.Fprintf(p.w, "%s %s %s\n", p.clock(), p.paint(red, "✘"), fmt.Sprintf(format, a...))
}

func (p *printer) done(format string, a ...any) {
	fmt.Fprintf(p.w, "%s %s\n", p.clock(), p.paint(bold+";"+green, fmt.Sprintf(format, a...)))
}

func (p *printer) fail(msg string) {
	fmt.Fprintf(p.w, "%s %s %s\n", p.clock(), p.paint(bold+";"+red, "demo failed:"), msg)
}

func (p *printer) cmd(format string, a ...any) {
	fmt.Fprintf(p.w, "  %s %s\n", p.paint(dim, "$"), fmt.Sprintf(format, a...))
}

// tree lists the repository's files.
func (p *printer) tree(files map[string]string) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(p.w, "    %s\n", p.paint(dim, n))
	}
}

// bar draws share (0..1) as a bar of width cells.
func bar(share float64, width int) string {
	n := int(share*float64(width) + 0.5)
	if n > width {
		n = width
	}
	if n < 0 {
		n = 0
	}
	return strings.Repeat("█", n) + strings.Repeat("░", width-n)
}
