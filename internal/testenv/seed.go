package testenv

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// EnvSeed replays a randomized test: OCI2_TEST_SEED=N go test -run Name.
const EnvSeed = "OCI2_TEST_SEED"

// Seed returns the seed of a randomized test: $OCI2_TEST_SEED when set,
// otherwise a fresh one from the clock. Either way it is logged, so a
// failure's log says how to replay it.
func Seed(t testing.TB) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(EnvSeed); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("$%s=%q: %v", EnvSeed, s, err)
		}
		seed = v
	}
	t.Logf("random seed %d (replay: %s=%d go test -run '^%s$')", seed, EnvSeed, seed, t.Name())
	return seed
}
