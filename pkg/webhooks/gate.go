package webhooks

import (
	"context"
	"encoding/json"
	"fmt"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Post posts payload to hook once (no retries: a gate asks again later),
// signed with the key of hook.secretRef read from namespace, within the
// hook's timeout. It is the call of a webhook that belongs to no Canary, such
// as a Pipeline stage's webhook gate; errors are those of Call.
func (c *Client) Post(ctx context.Context, namespace string, hook sluicev1beta1.CanaryWebhook, payload Payload) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("failed to encode the payload: %w", err)
	}
	var key []byte
	if hook.SecretRef != nil {
		if c.Secret == nil {
			return fmt.Errorf("webhook %s: no Secret reader to sign with", hook.Name)
		}
		if key, err = c.Secret(ctx, namespace, hook.SecretRef.Name); err != nil {
			return fmt.Errorf("webhook %s: %w", hook.Name, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, hook.TimeoutOrDefault())
	defer cancel()
	_, err = c.once(ctx, hook, body, key)
	return err
}
