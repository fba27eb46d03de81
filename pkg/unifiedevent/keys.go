package unifiedevent

// Attribute keys. OpenTelemetry semantic-convention names come first; tapio.* keys exist only
// for what the conventions have no name for.
const (
	// Resource: who the event is about.
	KeyServiceName      = "service.name"
	KeyHostName         = "host.name"
	KeyK8sNodeName      = "k8s.node.name"
	KeyK8sNamespaceName = "k8s.namespace.name"
	KeyK8sPodName       = "k8s.pod.name"
	KeyK8sPodUID        = "k8s.pod.uid"
	KeyK8sContainerName = "k8s.container.name"
	KeyContainerID      = "container.id"

	// Resource: the owning workload of a Kubernetes event's involved object, when it is not a pod.
	KeyK8sDeploymentName  = "k8s.deployment.name"
	KeyK8sDeploymentUID   = "k8s.deployment.uid"
	KeyK8sReplicaSetName  = "k8s.replicaset.name"
	KeyK8sReplicaSetUID   = "k8s.replicaset.uid"
	KeyK8sStatefulSetName = "k8s.statefulset.name"
	KeyK8sStatefulSetUID  = "k8s.statefulset.uid"
	KeyK8sDaemonSetName   = "k8s.daemonset.name"
	KeyK8sDaemonSetUID    = "k8s.daemonset.uid"
	KeyK8sJobName         = "k8s.job.name"
	KeyK8sJobUID          = "k8s.job.uid"
	KeyK8sCronJobName     = "k8s.cronjob.name"
	KeyK8sCronJobUID      = "k8s.cronjob.uid"
	KeyK8sNodeUID         = "k8s.node.uid"

	// Scope.
	KeySchemaVersion = "tapio.schema.version"

	// Record: the UnifiedEvent core.
	KeyEventName = "event.name"
	KeyEventID   = "tapio.event.id"
	KeyLayer     = "tapio.layer"
	KeyCategory  = "tapio.category"
	KeyEntityID  = "tapio.entity.id"
	KeySource    = "tapio.source"

	// Resource or record: process.
	KeyProcessPID            = "process.pid"
	KeyProcessParentPID      = "process.parent_pid"
	KeyProcessExecutableName = "process.executable.name"
	KeyProcessCommandLine    = "process.command_line"
	KeyProcessExitCode       = "process.exit.code"

	// Record: network.
	KeySourceAddress      = "source.address"
	KeySourcePort         = "source.port"
	KeyDestinationAddress = "destination.address"
	KeyDestinationPort    = "destination.port"
	KeyServerAddress      = "server.address"
	KeyServerPort         = "server.port"
	KeyNetworkTransport   = "network.transport"

	// Record and span: application protocol, errors and users.
	KeyHTTPRequestMethod      = "http.request.method"
	KeyHTTPResponseStatusCode = "http.response.status_code"
	KeyHTTPStatusCodeLegacy   = "http.status_code"
	KeyHTTPRoute              = "http.route"
	KeyDBSystemName           = "db.system.name"
	KeyDBSystemLegacy         = "db.system"
	KeyRPCSystem              = "rpc.system"
	KeyRPCGRPCStatusCode      = "rpc.grpc.status_code"
	KeyErrorType              = "error.type"
	KeyExceptionType          = "exception.type"
	KeyExceptionMessage       = "exception.message"
	KeyExceptionStacktrace    = "exception.stacktrace"
	KeyOriginalEventName      = "tapio.application.event.name"
	KeyEndUserID              = "enduser.id"
	KeyUserID                 = "user.id"
	KeySessionID              = "session.id"

	// Record: Kubernetes Event facts with no semantic-convention name.
	KeyK8sEventReason             = "tapio.kubernetes.reason"
	KeyK8sEventType               = "tapio.kubernetes.event.type"
	KeyK8sEventCount              = "tapio.kubernetes.event.count"
	KeyK8sEventUID                = "tapio.kubernetes.event.uid"
	KeyK8sInvolvedKind            = "tapio.kubernetes.involved_object.kind"
	KeyK8sInvolvedName            = "tapio.kubernetes.involved_object.name"
	KeyK8sInvolvedUID             = "tapio.kubernetes.involved_object.uid"
	KeyK8sInvolvedFieldPath       = "tapio.kubernetes.involved_object.field_path"
	KeyK8sEventReportingComponent = "tapio.kubernetes.reporting_component"

	// Span: why a span was annotated as slow.
	KeyTraceLatencyThresholdMs = "tapio.trace.latency_threshold_ms"
)

// SchemaVersion is the version of this schema, written as tapio.schema.version on the scope.
const SchemaVersion = 1

// Placement says where a key is written.
type Placement string

const (
	OnResource     Placement = "resource"
	OnScope        Placement = "scope"
	OnRecord       Placement = "record"
	OnSpan         Placement = "span"
	OnRecordOrSpan Placement = "record, span"
	// OnResourceOrRecord keys describe who an event is about: the ebpf receiver writes them on the
	// resource (one resource per process and batch, so they are written once, not per event);
	// other sources may put them on the record. Readers look on the record first, then on the
	// resource.
	OnResourceOrRecord Placement = "resource, record"
)

// KeySpec documents one attribute key.
type KeySpec struct {
	Key       string
	Placement Placement
	Meaning   string
}

var baseKeySpecs = []KeySpec{
	{KeyServiceName, OnResource, "logical service the event is about"},
	{KeyHostName, OnResource, "host (node) name"},
	{KeyK8sNodeName, OnResource, "Kubernetes node"},
	{KeyK8sNamespaceName, OnResource, "Kubernetes namespace"},
	{KeyK8sPodName, OnResource, "pod name"},
	{KeyK8sPodUID, OnResource, "pod uid; first choice for the entity id"},
	{KeyK8sContainerName, OnResource, "container name inside the pod"},
	{KeyContainerID, OnResource, "container runtime id; second choice for the entity id"},
	{KeyK8sDeploymentName, OnResource, "deployment named by a Kubernetes event's involved object"},
	{KeyK8sDeploymentUID, OnResource, "its uid"},
	{KeyK8sReplicaSetName, OnResource, "replica set named by a Kubernetes event's involved object"},
	{KeyK8sReplicaSetUID, OnResource, "its uid"},
	{KeyK8sStatefulSetName, OnResource, "stateful set named by a Kubernetes event's involved object"},
	{KeyK8sStatefulSetUID, OnResource, "its uid"},
	{KeyK8sDaemonSetName, OnResource, "daemon set named by a Kubernetes event's involved object"},
	{KeyK8sDaemonSetUID, OnResource, "its uid"},
	{KeyK8sJobName, OnResource, "job named by a Kubernetes event's involved object"},
	{KeyK8sJobUID, OnResource, "its uid"},
	{KeyK8sCronJobName, OnResource, "cron job named by a Kubernetes event's involved object"},
	{KeyK8sCronJobUID, OnResource, "its uid"},
	{KeyK8sNodeUID, OnResource, "node uid, when a Kubernetes event is about a node"},
	{KeySchemaVersion, OnScope, "UnifiedEvent schema version (1)"},
	{KeyEventName, OnRecordOrSpan, "`tapio.<layer>.<what>`, from the catalogue"},
	{KeyEventID, OnRecordOrSpan, "unique event id, 16 bytes as 32 hex digits: random, or for a span derived from its trace and span ids"},
	{KeyLayer, OnRecordOrSpan, "kernel, container, kubernetes, network, storage, application or trace"},
	{KeyCategory, OnRecordOrSpan, "memory, process, network, storage, availability, error, latency, scheduling or config"},
	{KeyEntityID, OnRecordOrSpan, "canonical key of the workload the event is about (see the entity-id rule); on the resource for metrics"},
	{KeySource, OnRecordOrSpan, "what observed it: ebpf, k8sobjects, otlp"},
	{KeyProcessPID, OnResourceOrRecord, "process id (the thread group's); the event's own process, also when the entity is its workload"},
	{KeyProcessParentPID, OnResourceOrRecord, "parent process id"},
	{KeyProcessExecutableName, OnResourceOrRecord, "executable name (kernel comm)"},
	{KeyProcessCommandLine, OnRecord, "full command line"},
	{KeyProcessExitCode, OnRecord, "exit code"},
	{KeySourceAddress, OnRecord, "local address of a connection"},
	{KeySourcePort, OnRecord, "local port"},
	{KeyDestinationAddress, OnRecord, "remote address of a connection"},
	{KeyDestinationPort, OnRecord, "remote port"},
	{KeyServerAddress, OnRecordOrSpan, "address of the server a client called"},
	{KeyServerPort, OnRecordOrSpan, "its port"},
	{KeyNetworkTransport, OnRecord, "tcp or udp"},
	{KeyHTTPRequestMethod, OnSpan, "HTTP method"},
	{KeyHTTPResponseStatusCode, OnSpan, "HTTP status code; ≥ 500 on a SERVER span is a server_error"},
	{KeyHTTPStatusCodeLegacy, OnSpan, "pre-1.21 name of the HTTP status code, still read"},
	{KeyHTTPRoute, OnSpan, "route template; selects a slow_span threshold"},
	{KeyDBSystemName, OnSpan, "database system of a CLIENT span"},
	{KeyDBSystemLegacy, OnSpan, "pre-1.33 name of the database system, still read"},
	{KeyRPCSystem, OnSpan, "RPC system, e.g. grpc"},
	{KeyRPCGRPCStatusCode, OnSpan, "gRPC status code"},
	{KeyErrorType, OnRecordOrSpan, "class of error"},
	{KeyExceptionType, OnRecord, "exception type; makes a log record an exception event"},
	{KeyExceptionMessage, OnRecord, "exception message"},
	{KeyExceptionStacktrace, OnRecord, "exception stack trace"},
	{KeyOriginalEventName, OnRecord, "an application log's own event.name, kept when the processor names it an error_log or exception"},
	{KeyEndUserID, OnSpan, "end user; counted for affected users"},
	{KeyUserID, OnSpan, "user; counted for affected users"},
	{KeySessionID, OnSpan, "session; counted for affected users"},
	{KeyK8sEventReason, OnRecord, "Kubernetes event reason, e.g. BackOff"},
	{KeyK8sEventType, OnRecord, "Kubernetes event type: Normal or Warning"},
	{KeyK8sEventCount, OnRecord, "how many times Kubernetes saw this event (repeat count)"},
	{KeyK8sEventUID, OnRecord, "uid of the Kubernetes Event object"},
	{KeyK8sInvolvedKind, OnRecord, "kind of the involved (regarding) object"},
	{KeyK8sInvolvedName, OnRecord, "its name"},
	{KeyK8sInvolvedUID, OnRecord, "its uid"},
	{KeyK8sInvolvedFieldPath, OnRecord, "its field path, e.g. spec.containers{app}"},
	{KeyK8sEventReportingComponent, OnRecord, "component that reported the event, e.g. kubelet"},
	{KeyTraceLatencyThresholdMs, OnSpan, "threshold a slow_span exceeded, milliseconds"},
}

// keySpecs is every documented key; each component's keys live in a file of their own.
var keySpecs = concatKeySpecs(baseKeySpecs, conventionKeySpecs, workloadKeySpecs, kernelKeySpecs, kernelReceiverKeySpecs, repeatKeySpecs, storageKeySpecs, correlationKeySpecs)

func concatKeySpecs(groups ...[]KeySpec) []KeySpec {
	var all []KeySpec
	for _, g := range groups {
		all = append(all, g...)
	}
	return all
}

// KeySpecs returns every documented attribute key.
func KeySpecs() []KeySpec {
	return append([]KeySpec(nil), keySpecs...)
}
