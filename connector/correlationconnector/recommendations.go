package correlationconnector

import (
	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

type recommendation struct {
	horizon string
	action  string
}

// advice is what to do about a root cause, by horizon.
type advice struct{ immediate, shortTerm, longTerm string }

// builtinAdvice is the rule table by root-cause event name. Config adds to it or replaces entries.
var builtinAdvice = map[unifiedevent.Name]advice{
	unifiedevent.OOMKill: {
		"Raise the memory limit of the killed container (or restart it with more headroom) to restore service.",
		"Find the leak or the unbounded cache: compare heap profiles before and after load; check recent deploys.",
		"Scale out and set requests/limits from observed peak usage; alert on memory utilisation before the limit.",
	},
	unifiedevent.PodOOMKilled: {
		"Raise the pod's memory limit or roll back the deploy that raised its usage.",
		"Find the leak: profile the container's heap under production load.",
		"Scale out and size requests/limits from observed peaks; add a memory-utilisation alert.",
	},
	unifiedevent.MemoryPressure: {
		"Free memory on the node: evict or move the largest consumers.",
		"Find which workloads grew and cap them with limits.",
		"Add node capacity or tune requests so the scheduler stops over-committing memory.",
	},
	unifiedevent.FatalSignal: {
		"Restart the crashed process and check that it stays up.",
		"Read the core dump or crash log to find the faulting code path.",
		"Add a regression test for the crash and canary deploys to catch the next one.",
	},
	unifiedevent.ProcessExit: {
		"Restart the exited process and check its exit code and last logs.",
		"Fix the cause of the abnormal exit (configuration, dependency at start-up, panic).",
		"Supervise the process with health checks and restart back-off.",
	},
	unifiedevent.ConnectionRefused: {
		"The dependency is down: nothing listens on its port. Restart it or fail over to a replica.",
		"Find why it stopped listening (crash, OOM kill, failed deploy) and fix that cause.",
		"Add readiness checks, retries with back-off and a circuit breaker in the callers.",
	},
	unifiedevent.ConnectionTimeout: {
		"The dependency does not answer: check that its host is up and reachable (network policy, firewall).",
		"Find where packets are dropped: node network, overload of the dependency, SYN backlog.",
		"Set connect timeouts and circuit breakers in callers; add capacity to the dependency.",
	},
	unifiedevent.ConnectionReset: {
		"Check the dependency for crashes or restarts that reset open connections.",
		"Align idle and keep-alive timeouts between clients, proxies and servers.",
		"Make clients retry idempotent requests on reset and drain connections on deploys.",
	},
	unifiedevent.TCPRetransmit: {
		"Check the network path between the peers for loss (node NIC, overlay, saturated links).",
		"Find the congested hop and move or rate-limit the heavy flows.",
		"Add network capacity and alert on retransmission rates.",
	},
	unifiedevent.IOError: {
		"Check the failing device and move the workload off it.",
		"Replace or repair the disk; verify data integrity.",
		"Use redundant storage and alert on I/O errors.",
	},
	unifiedevent.IOLatency: {
		"Find the process saturating the disk and throttle it.",
		"Move latency-sensitive data to faster storage or separate volumes.",
		"Provision I/O capacity from observed peaks and alert on latency.",
	},
	unifiedevent.CrashLoopBackOff: {
		"Read the crashing container's last logs and roll back the change that broke start-up.",
		"Fix the start-up failure (configuration, missing secret, dependency not ready).",
		"Add start-up probes and pre-deploy checks for configuration.",
	},
	unifiedevent.PodEvicted: {
		"Reschedule the evicted pods and check the node's resource pressure.",
		"Set requests that match real usage so the pod is not first to go.",
		"Add node capacity and a PodDisruptionBudget.",
	},
	unifiedevent.ImagePullFailed: {
		"Fix the image reference or registry credentials and redeploy.",
		"Check the registry's availability and rate limits.",
		"Mirror images to a registry you run and pin digests.",
	},
	unifiedevent.FailedScheduling: {
		"Free or add capacity matching the pod's requests, affinity and taints.",
		"Right-size requests and review affinity rules.",
		"Add cluster autoscaling for the node pool.",
	},
	unifiedevent.ProbeFailed: {
		"Check whether the container is overloaded or its probe is too strict.",
		"Make the probe test the service's own health, not its dependencies.",
		"Tune probe thresholds from observed start-up and response times.",
	},
	unifiedevent.KubernetesWarning: {
		"Read the Kubernetes event's reason and message and act on the named object.",
		"Fix the configuration the warning points to.",
		"Alert on recurring warnings of this reason.",
	},
	unifiedevent.ErrorLog: {
		"Read the error log in context (same trace) and roll back if it started with a deploy.",
		"Fix the failing code path named by the log.",
		"Add a test for the failure and alert on its rate.",
	},
	unifiedevent.Exception: {
		"Read the exception and stack trace; roll back if it started with a deploy.",
		"Fix the code that throws it and handle the failure explicitly.",
		"Add a regression test and alert on exception rates.",
	},
	unifiedevent.ServerError: {
		"Check the failing route's dependencies and recent deploys; roll back if the errors started with one.",
		"Fix the failing handler; add error budgets for the route.",
		"Add canary deploys and SLO alerts for the route.",
	},
	unifiedevent.DependencyError: {
		"The called dependency fails: check its health and fail over or degrade gracefully.",
		"Fix the dependency's failure; add retries with back-off for idempotent calls.",
		"Add circuit breakers and redundancy for the dependency.",
	},
	unifiedevent.SlowSpan: {
		"Find the slow step in the trace and shed or throttle load on it.",
		"Optimise the slow query or call; add caching where reads repeat.",
		"Add capacity and latency SLO alerts for the route.",
	},
	unifiedevent.MetricThresholdBreach: {
		"Act on the breached metric: relieve the resource it measures (scale out, restart, shed load).",
		"Find what drove the metric past its threshold (a deploy, traffic, a leak).",
		"Size capacity from observed peaks and alert before the threshold is reached.",
	},
}

// recommendationTable resolves the advice for a root cause: config by metric rule, config by event
// name, then the built-in table.
type recommendationTable struct {
	byName    map[unifiedevent.Name]advice
	byRule    map[string]advice
	ruleNames []string // threshold rule names by index
}

func newRecommendationTable(rules []RecommendationRule, thresholds []ThresholdRule) recommendationTable {
	t := recommendationTable{byName: make(map[unifiedevent.Name]advice, len(builtinAdvice)), byRule: map[string]advice{}}
	for name, a := range builtinAdvice {
		t.byName[name] = a
	}
	for _, r := range rules {
		a := advice{r.Immediate, r.ShortTerm, r.LongTerm}
		if r.MetricRule != "" {
			t.byRule[r.MetricRule] = a
		} else {
			t.byName[unifiedevent.Name(r.EventName)] = a
		}
	}
	for _, r := range thresholds {
		t.ruleNames = append(t.ruleNames, r.Name)
	}
	return t
}

func (t recommendationTable) lookup(root *problemEvent) []recommendation {
	a, ok := advice{}, false
	if root.breach != nil && root.breach.rule < len(t.ruleNames) {
		a, ok = t.byRule[t.ruleNames[root.breach.rule]]
	}
	if !ok {
		a, ok = t.byName[root.name]
	}
	if !ok {
		return nil
	}
	out := make([]recommendation, 0, 3)
	for _, r := range []recommendation{{unifiedevent.HorizonImmediate, a.immediate}, {unifiedevent.HorizonShortTerm, a.shortTerm}, {unifiedevent.HorizonLongTerm, a.longTerm}} {
		if r.action != "" {
			out = append(out, r)
		}
	}
	return out
}
