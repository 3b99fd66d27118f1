// Package e2e holds Sluice's end-to-end scenarios: releases driven by the
// real sluice manager through a real data plane, with real traffic, on one
// machine without Docker or internet.
//
// # Running
//
//	make e2e
//
// builds the tools (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kwok; Prometheus from the Debian package) and Traefik
// (hack/traefik.sh, from the Go module proxy), all cached in ~/.cache/sluice,
// then runs
//
//	go test -tags e2e -count=1 -timeout 30m ./e2e/...
//
// The scenarios carry the build tag e2e, so `go test ./...` leaves them out.
// One scenario can be run with -run, e.g.
// `go test -tags e2e -count=1 -run TestGatewayAPICanary ./e2e/`.
//
// # The stack
//
// Package e2e/stack brings up, as child processes with recorded PIDs that
// the kernel kills if the test process dies (Pdeathsig):
//
//   - etcd and kube-apiserver (envtest, pkg/testenv) with Services on
//     loopback ClusterIPs (127.96.0.0/16), kube-controller-manager,
//     kube-scheduler and kwok with a fake node, so Deployments get real
//     ReplicaSets and pods that become ready;
//   - the CRDs of Sluice (config/crd/bases), the Gateway API, Traefik and
//     Istio (hack/crds.sh);
//   - Traefik with the kubernetesGateway and kubernetesCRD providers and
//     native load balancing (it sends traffic to Service ClusterIPs), fine
//     latency buckets, a GatewayClass "traefik" and the Gateway
//     gateway/public whose listener is Traefik's web entryPoint;
//   - Prometheus scraping Traefik every second;
//   - in-process "pods": for every Service on a loopback ClusterIP the stack
//     listens on ClusterIP:port and answers as a ready pod selected by the
//     Service, with the version, error rate and latency of that pod's env
//     (VERSION, ERROR_RATE 0..1, LATENCY_MS): a new pod template is served
//     as soon as its pods are ready, with no kube-proxy; a template without
//     VERSION answers with its image's tag, and one without ERROR_RATE fails
//     at the rate the test declared for its image (Pods.SetImageErrorRate),
//     so an image changed by a commit behaves as that image would;
//   - a bounded load generator sending through Traefik with a Host header and
//     counting answers by version and status code;
//   - the sluice manager (go build ./cmd/sluice, once per run) as a child
//     process with leader election in sluice-system (6 s leases), which tests
//     may kill and restart, or run twice (a leader and a standby);
//   - on demand, more clusters (Stack.StartCluster: a control plane and a
//     manager each), which may have the same data plane again
//     (StartClusterWith with ClusterOptions{DataPlane: true}): Services on
//     loopback ClusterIPs of a range of their own (127.97.0.0/16, ...),
//     their own Traefik and Gateway, their own Prometheus (the cluster's
//     manager's --metrics-server) and pods, and a load generator through
//     that Traefik (Cluster.StartLoad).
//
// Tests may also stop kube-apiserver and start it again (testenv's
// StopAPIServer and StartAPIServer: the same command line, so the same port,
// certificates and etcd) while everything else keeps running.
//
// Stack.Stop stops everything in reverse order (the API server before
// etcd). A failing scenario keeps the stack's directory (kubeconfig,
// Traefik configuration, logs of Traefik and sluice) and names it in the
// test log.
//
// # Scenarios
//
// Each scenario is a Go test written as given/when/then in its own
// namespace, against one stack and one manager shared by the package:
//
//   - TestGatewayAPICanary_PromotesHealthyRelease (scenario 1): a Gateway
//     API canary with real traffic; the observed split follows the weights;
//     the success rate is measured from Traefik's metrics by the builtin
//     request-success-rate; the primary ends on the new version; no request
//     fails.
//   - TestGatewayAPICanary_RollsBackFailingRelease (scenario 2): a canary
//     failing 20 % of its requests is rolled back at the threshold; the
//     primary never serves it; the failure, with the measured success rate,
//     is in the status history and in the Slack message received by a local
//     fake Slack through an AlertProvider.
//   - TestTraefikService_LatencyRegressionRolledBack (3): a TraefikService
//     canary behind the user's IngressRoute; a release answering in 250 ms
//     is caught by request-duration and rolled back.
//   - TestABTesting_OnlyMatchingRequestsReachTheCanary (4): A/B testing by
//     header through the Gateway API; every request with the header, and no
//     other, reaches the canary.
//   - TestBlueGreen_PromotedWhenTheGateOpens (5): blue/green with the
//     kubernetes provider behind the user's HTTPRoute, held by the load
//     tester's confirm-promotion gate (the real cmd/loadtester process) until
//     a release manager opens it with a token.
//   - TestGitSync_ACommitReleases (6): the app and its Canary in a local Git
//     repository; a commit is the whole release.
//   - TestRestart_RolloutFinishesOnce (7): the manager SIGKILLed mid-rollout
//     and started again; every step taken once, in order.
//   - TestPrometheusDown_NeverPromotes (8): Prometheus killed during the
//     analysis; every check errors, no promotion, rollback at the threshold;
//     Prometheus back, the next revision is promoted.
//   - TestDeletion_ServiceKeepsAnswering (9): a Canary deleted mid-rollout;
//     every request before, during and after answers 2xx; the HTTPRoute
//     survives, released to the apex Service.
//   - TestIstio_ObjectsFollowTheRollout (10): no Envoy here, so the
//     VirtualService and DestinationRules are checked at every step.
//   - TestFailover_StandbyFinishesTheRollout (11): a second manager on the
//     same Lease; the leader SIGKILLed mid-rollout; the standby takes over
//     once the Lease has expired (not before) and finishes the release,
//     every step once, with no failed request.
//   - TestAPIServerRestart_RolloutFinishesOnce (12): kube-apiserver stopped
//     (SIGTERM, SIGKILL after 10 s) mid-rollout, down while a step is due,
//     started again on the same port with the same etcd; Traefik serves
//     throughout, the manager rides the outage out (a lease that outlasts
//     it), and the release finishes, every step once, with no failed
//     request.
//   - TestFleet_GitSyncDeploysTheFleet (13): a fleet repository (clusters/,
//     infrastructure/, apps/base + overlays, a SOPS-encrypted Secret,
//     SSH-signed commits) deployed to two clusters, staging (a second
//     control plane with its own manager) and production, from one
//     bootstrap GitSync each: infrastructure before apps, the Secret
//     decrypted and in no log, event or status; a commit to production's
//     overlay releases a canary there and nothing in staging; a commit
//     signed with another key is applied nowhere, and says why.
//   - TestFeedback_CommitStatusSlackAndDeliveryFigures (14): commits
//     pushed to a real Gitea are applied by GitSync and released; the
//     GitSync and the Canary post pending then success on the commit; the
//     lead time histogram holds one observation, commit to promotion; a
//     failing version ends in failure on its commit, Slack gets the
//     rollback, the change failure rate reads 0.5; a commit that does not
//     build shows failure on the commit and reaches Slack once.
//   - TestPromotion_StagingToProduction (15): a Pipeline promotes images
//     pushed to an OCI registry (go-containerregistry's, in process) from
//     staging (the stack's cluster, live traffic, request-success-rate) to
//     production (a second control plane with its own data plane, whose
//     manager runs --enable-promotion and reads staging's Canary through a
//     kubeconfig Secret; the same Gateway API Canary and
//     request-success-rate under its own live traffic): 1.1.0 is committed
//     to staging within a scan interval, promoted there, pinned by the
//     same digest in production and promoted there, production's canary
//     answering requests during each of its analyses and no request to
//     production failing; 1.2.0 (an image failing half its requests) is rolled back in
//     staging, shown failed with why, announced by a Warning event, and
//     never committed to production; 1.3.0 waits at production's manual
//     gate until sluice.dev/approve; sluice.dev/rollback-to brings
//     production back to 1.1.0 by a commit; the promoting manager killed
//     while staging promotes (kept down until it has) and again while
//     production releases loses nothing, and each stage's path gets one
//     commit per bundle, each with its Sluice-* provenance trailers.
//   - TestGitSync_EngineAndGitSyncDoNotFight (17): the Deployment, the
//     apex Service, an HPA and the HTTPRoute in Git, applied every second
//     with drift correction, through a whole release under live traffic:
//     every write to the four objects counted by field manager; GitSync
//     never writes a field the engine owns, nothing flips back and forth,
//     no request fails.
//   - TestSkipper_PromotesWithLiveTraffic and
//     TestSkipper_RollsBackFailingRelease (18, 19; alone: `make e2e-skipper`):
//     the skipper provider under live traffic through a real Skipper
//     (hack/skipper.sh) with its Kubernetes dataclient, reading the
//     scenario's namespace as a ServiceAccount with a bound token, and a
//     Prometheus of its own: the split measured at the client follows the
//     weights Sluice writes (within binomial noise: Skipper draws per
//     request); a MetricTemplate reads the canary route's 5xx rate from
//     Skipper's metrics; a healthy release is promoted with no failed
//     request, one failing half its requests is rolled back.
//
// e2e/stack has its own tests: weighted routing through the played pods and
// Prometheus without Sluice, a second cluster with a data plane whose
// Traefik, pods and Prometheus serve and count its traffic only, and a
// crashed run (SIGKILL) that must leave no process running and nothing
// listening.
package e2e
