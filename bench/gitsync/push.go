package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/sluice-cd/sluice/pkg/gitsync"
)

// pushPayload is the part of GitHub's push event the receiver routes by,
// with the fields a real delivery carries around it.
func pushPayload(repoURL, before, after string) ([]byte, error) {
	return json.Marshal(map[string]any{
		"ref":    "refs/heads/main",
		"before": before,
		"after":  after,
		"repository": map[string]any{
			"name":      "fleet",
			"full_name": "bench/fleet",
			"clone_url": repoURL,
			"html_url":  repoURL,
		},
		"pusher":      map[string]string{"name": "bench"},
		"head_commit": map[string]string{"id": after, "message": "bench commit"},
	})
}

// githubSignature is GitHub's X-Hub-Signature-256 of body with secret.
func githubSignature(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// push delivers a signed GitHub push event to the receiver at base for
// GitSync ns/name and returns the receiver's answer; anything but 202 is
// an error.
func push(ctx context.Context, base, ns, name string, secret, body []byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/hooks/"+ns+"/"+name, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "bench")
	req.Header.Set(gitsync.GitHubSignatureHeader, githubSignature(secret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("failed to deliver the push event: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusAccepted {
		return string(answer), fmt.Errorf("the receiver answered %s: %s", resp.Status, bytes.TrimSpace(answer))
	}
	return string(bytes.TrimSpace(answer)), nil
}
