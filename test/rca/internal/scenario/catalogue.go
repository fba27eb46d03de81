package scenario

// All is every scenario, in the order the suite plays them.
var All = []Scenario{
	PostgresOOM,
	RedisOOM,
	RedisSegfault,
	PostgresBackendAbort,
	PostmasterKilled,
	RedisStopped,
	RedisNeverStarted,
	RedisConnectionReset,
	NginxConnectTimeout,
	NginxConnectAbandoned,
	PostgresIOError,
	RedisSlow,
	TwoFaults,
	NoiseService,
	NoiseHost,
}
