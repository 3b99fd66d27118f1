package notify

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// GitSyncInfo describes the GitSync an Event is about (Event.GitSync).
// Event.Reason is then the event type (RevisionApplied, SyncFailed,
// HealthCheckFailed, InvalidCommitSignature, DecryptionFailed,
// DriftCorrected, ObjectsPruned, Recovered) and Event.Message its one-line
// summary.
type GitSyncInfo struct {
	// Name and Namespace name the GitSync.
	Name, Namespace string
	// URL is the repository. User information (user:token@) is removed
	// before it is shown, whatever the caller passes.
	URL string
	// RefKind is branch, tag, semver or commit; Ref its value.
	RefKind, Ref string
	// Revision is "<ref>@sha1:<sha>".
	Revision string
	// Subject and Author describe the commit of Revision.
	Subject, Author string
	// Created, Configured and Pruned count the objects the sync changed;
	// ShowChanges tells whether they are worth a line (a revision applied).
	Created, Configured, Pruned int
	ShowChanges                 bool
	// Objects are the objects corrected or pruned ("Kind/namespace/name").
	Objects []string
	// FailureReason is the reason of a failed sync (e.g. BuildFailed) and
	// Error its message.
	FailureReason, Error string
	// Reminder is true when the failure was sent before.
	Reminder bool
}

// gitSyncLabels are the headlines of the GitSync event types.
var gitSyncLabels = map[string]string{
	"RevisionApplied":        "Revision applied",
	"SyncFailed":             "Sync failed",
	"HealthCheckFailed":      "Health check failed",
	"DecryptionFailed":       "Decryption failed",
	"VerificationFailed":     "Verification failed",
	"InvalidCommitSignature": "Verification failed",
	"InvalidTagSignature":    "Verification failed",
	"VerificationError":      "Verification failed",
	"DriftCorrected":         "Drift corrected",
	"ObjectsPruned":          "Objects pruned",
	"Recovered":              "Recovered",
	"HelmUpgradeFailed":      "Helm upgrade failed",
}

// gitSyncObjectTitles name the list of objects of an event type.
var gitSyncObjectTitles = map[string]string{
	"DriftCorrected": "Corrected objects",
	"ObjectsPruned":  "Pruned objects",
}

// gitSyncMessage builds the content of a GitSync notification: the
// repository, the ref, the revision (linked to the commit on a known
// host), the commit, what changed, the error and the objects.
func gitSyncMessage(e Event) message {
	gi := *e.GitSync
	repo := redactUserInfo(gi.URL)
	title := gi.Name + "." + gi.Namespace
	label := gitSyncLabels[e.Reason]
	if label == "" {
		label = e.Reason
	}
	if gi.Reminder {
		label += " (reminder)"
	}
	m := message{
		Title:    title,
		Headline: title + ": " + label,
		Subtitle: label,
		Text:     scrubUserInfo(e.Message),
		Severity: normSeverity(e.Severity),
		Reason:   e.Reason,
		Code:     scrubUserInfo(gi.Error),
		Time:     e.Time.UTC(),
	}
	if gi.FailureReason != "" {
		m.Reason = gi.FailureReason
		m.Text = fmt.Sprintf("The sync of %s failed: %s.", orDash(shortRevision(gi.Revision)), gi.FailureReason)
		if gi.Reminder {
			m.Text = fmt.Sprintf("The sync of %s still fails: %s.", orDash(shortRevision(gi.Revision)), gi.FailureReason)
		}
	}
	m.Fallback = m.Headline
	if m.Text != "" {
		m.Fallback += ": " + m.Text
	}
	refTitle := "Branch"
	switch gi.RefKind {
	case "tag":
		refTitle = "Tag"
	case "semver":
		refTitle = "SemVer"
	case "commit":
		refTitle = "Commit"
	}
	sha := shaOf(gi.Revision)
	m.Fields = []field{
		{Title: "Repository", Value: orDash(repo), URL: repoWebURL(repo)},
		{Title: refTitle, Value: orDash(gi.Ref)},
		{Title: "Revision", Value: orDash(shortRevision(gi.Revision)), URL: commitURL(repo, sha)},
	}
	if gi.Subject != "" {
		m.Fields = append(m.Fields, field{Title: "Commit", Value: gi.Subject})
	}
	if gi.Author != "" {
		m.Fields = append(m.Fields, field{Title: "Author", Value: gi.Author})
	}
	if gi.ShowChanges {
		m.Fields = append(m.Fields, field{Title: "Changes", Value: fmt.Sprintf("%d created, %d configured, %d pruned", gi.Created, gi.Configured, gi.Pruned)})
	}
	if len(gi.Objects) > 0 {
		m.ListTitle = gitSyncObjectTitles[e.Reason]
		if m.ListTitle == "" {
			m.ListTitle = "Objects"
		}
		m.Checks = append(m.Checks, gi.Objects...)
	}
	return m
}

// shaOf returns the SHA of a "<ref>@sha1:<sha>" revision.
func shaOf(revision string) string {
	_, sha, ok := strings.Cut(revision, "@sha1:")
	if !ok {
		return ""
	}
	return sha
}

// shortRevision is "<ref>@<12 characters of the SHA>", as people read it.
func shortRevision(revision string) string {
	ref, sha, ok := strings.Cut(revision, "@sha1:")
	if !ok {
		return revision
	}
	if len(sha) > 12 {
		sha = sha[:12]
	}
	return ref + "@" + sha
}

// userInfoRe matches the user information of URLs in free text.
var userInfoRe = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@`)

// scrubUserInfo removes user:token@ from every URL in s.
func scrubUserInfo(s string) string { return userInfoRe.ReplaceAllString(s, "$1") }

// redactUserInfo returns the URL without user information.
func redactUserInfo(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return scrubUserInfo(raw)
	}
	u.User = nil
	return u.String()
}

// repoWeb is the web address of a repository on a known host: GitHub,
// GitLab, Bitbucket, Azure DevOps, or an https host that looks like Gitea
// (or Forgejo, Codeberg). kind says how that host links a commit.
func repoWeb(repo string) (web, kind string) {
	u, err := url.Parse(repo)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "ssh") {
		return "", ""
	}
	host := strings.ToLower(u.Hostname())
	path := strings.TrimSuffix(strings.Trim(u.Path, "/"), ".git")
	if path == "" {
		return "", ""
	}
	switch {
	case host == "github.com", host == "gitlab.com", host == "bitbucket.org":
		return "https://" + host + "/" + path, host
	case host == "dev.azure.com":
		return "https://dev.azure.com/" + path, host
	case host == "ssh.dev.azure.com":
		// ssh://git@ssh.dev.azure.com/v3/org/project/repo
		parts := strings.Split(strings.TrimPrefix(path, "v3/"), "/")
		if len(parts) != 3 {
			return "", ""
		}
		return "https://dev.azure.com/" + parts[0] + "/" + parts[1] + "/_git/" + parts[2], "dev.azure.com"
	case u.Scheme == "https" && (strings.Contains(host, "gitea") || strings.Contains(host, "forgejo") || host == "codeberg.org"):
		return "https://" + u.Host + "/" + path, "gitea"
	}
	return "", ""
}

// repoWebURL is the web page of the repository, or "" on an unknown host.
func repoWebURL(repo string) string {
	web, _ := repoWeb(repo)
	return web
}

// commitURL is the web page of a commit, or "" on an unknown host.
func commitURL(repo, sha string) string {
	if sha == "" {
		return ""
	}
	web, kind := repoWeb(repo)
	switch kind {
	case "":
		return ""
	case "gitlab.com":
		return web + "/-/commit/" + sha
	case "bitbucket.org":
		return web + "/commits/" + sha
	}
	return web + "/commit/" + sha
}
