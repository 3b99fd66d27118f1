package promotion

import (
	"fmt"
	"strconv"
	"time"

	// The zone database is embedded so that windows mean the same on every
	// node, whatever its /usr/share/zoneinfo holds (or lacks, in distroless).
	_ "time/tzdata"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// windowsOpen tells whether now falls in one of the windows and, when it
// does not, when the next one opens. Windows are wall-clock times in their
// zone, so a 09:00 window opens at 09:00 local time on both sides of a DST
// change. No windows: always open.
func windowsOpen(ws []sluicev1beta1.PromotionWindow, now time.Time) (bool, time.Time, error) {
	if len(ws) == 0 {
		return true, time.Time{}, nil
	}
	var next time.Time
	for _, w := range ws {
		open, n, err := windowOpen(w, now)
		if err != nil {
			return false, time.Time{}, err
		}
		if open {
			return true, time.Time{}, nil
		}
		if !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	return false, next, nil
}

func windowOpen(w sluicev1beta1.PromotionWindow, now time.Time) (bool, time.Time, error) {
	zone := w.TimeZone
	if zone == "" {
		zone = "UTC"
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("time zone %q of a promotion window is unknown: use an IANA name such as Europe/Paris", zone)
	}
	start, err1 := minutes(w.Start)
	end, err2 := minutes(w.End)
	if err1 != nil || err2 != nil || start >= end {
		return false, time.Time{}, fmt.Errorf("promotion window %s-%s is not HH:MM-HH:MM with start before end", w.Start, w.End)
	}
	t := now.In(loc)
	if onDay(w, t.Weekday()) {
		m := t.Hour()*60 + t.Minute()
		if m >= start && m < end {
			return true, time.Time{}, nil
		}
	}
	for k := range 8 {
		d := t.AddDate(0, 0, k)
		if !onDay(w, d.Weekday()) {
			continue
		}
		// time.Date resolves a start inside a DST gap to a real instant.
		at := time.Date(d.Year(), d.Month(), d.Day(), start/60, start%60, 0, 0, loc)
		if at.After(now) {
			return false, at, nil
		}
	}
	return false, time.Time{}, nil
}

func onDay(w sluicev1beta1.PromotionWindow, d time.Weekday) bool {
	if len(w.Days) == 0 {
		return true
	}
	for _, day := range w.Days {
		if string(day) == d.String() {
			return true
		}
	}
	return false
}

// minutes parses HH:MM (24:00 allowed) into minutes since midnight.
func minutes(s string) (int, error) {
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("not HH:MM: %q", s)
	}
	h, err := strconv.Atoi(s[:2])
	if err != nil {
		return 0, fmt.Errorf("not HH:MM: %q: %w", s, err)
	}
	m, err := strconv.Atoi(s[3:])
	if err != nil {
		return 0, fmt.Errorf("not HH:MM: %q: %w", s, err)
	}
	if h > 24 || m > 59 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("not a time of day: %q", s)
	}
	return h*60 + m, nil
}
