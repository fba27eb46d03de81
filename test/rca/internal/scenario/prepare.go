package scenario

import "github.com/yairfalse/tapio/test/rca/internal/servers"

// Prepare makes, once, what the runs copy.
func Prepare(cfg *Config) error {
	return servers.PreparePostgres(cfg.CacheDir)
}
