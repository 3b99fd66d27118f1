// Package loadtester is Sluice's load tester: an HTTP service that Canary
// webhooks call to generate load, run allow-listed commands and hold manual
// gates. Its API is Flagger's, without Flagger's security holes.
//
// # Endpoints
//
// Every endpoint but /healthz and /metrics needs credentials (else 401).
// The body (at most 64 KiB by default, else 413) is the webhook payload
// Sluice sends (webhooks.Payload); name and namespace are required (else
// 400), and the caller's identity must have the endpoint's scope in the
// namespace (else 403): check for tasks, checks, approve and halt; operate
// for open and close.
//
//	POST /                 run the task of metadata.type (see below)
//	/gate/approve          always 200
//	/gate/halt             always 403
//	/gate/check            200 if gate <name>.<namespace> is open, else 403 (gates start closed)
//	/gate/open|close       open or close it; 202
//	/rollback/check        200 if the rollback flag of the canary is set, else 403 (use as a rollback hook)
//	/rollback/open|close   set or clear it; 202
//	/healthz               200 "ok"
//	/metrics               Prometheus metrics
//
// # Authentication
//
// Callers are the clients of an AuthFile. A request carrying
// X-Sluice-Signature (what Sluice sends for a hook with a secretRef) is
// accepted when the signature verifies with one client's hmacKey for this
// method, path and body, is at most --signature-max-age old, and its request
// id was not accepted before (ConfigMapReplayGuard, shared by replicas; in
// memory, per pod, with memory gates); otherwise "Authorization: Bearer
// <token>" must equal one client's token. The client's grants must give the
// endpoint's scope in the canary namespace of the payload ("*" = any): the
// check uses the identity, not a field the caller may choose freely. Scopes
// default to check, so Sluice's key cannot open gates unless granted.
//
// # Task types
//
//	http-load              native HTTP load (vegeta), see TypeHTTPLoad; always available
//	cmd                    metadata.cmd split on blanks and run without a shell (Flagger's default type)
//	bash                   `bash -c metadata.cmd`, only for allow-list entries with shell: true
//	helm, kubectl          `helm <cmd>`, `kubectl <cmd>`, without a shell
//
// Unknown types are answered 400 with the list of valid types. The command
// types are refused (403) unless the load tester runs with
// --enable-shell-tasks, and then run only command lines matched by the
// allow-list (AllowRule), with a timeout, bounded output, at most
// --max-shell-tasks at once (else 429). They block until the command ends:
// 200 with {"output"} on success, 500 with {"error","output"} on failure.
// Unlike Flagger's cmd they are synchronous; use http-load for long load.
//
// # Gates
//
// ConfigMapGates keeps each open gate as a ConfigMap in the load tester's
// namespace, so gates survive restarts and are shared by replicas; without
// cluster access the command falls back to MemoryGates and logs so.
package loadtester
